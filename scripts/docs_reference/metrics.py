"""metrics.md: every Prometheus metric, registered or computed at scrape time (AST scan of the source)."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .common import GENERATED_NOTE, const_str, message_text, source_modules


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    help: str
    labels: tuple[str, ...]


def metrics_list() -> list[Metric]:
    """Every Prometheus metric: registered (``registry.counter/gauge/histogram``) or computed at scrape time
    (a collector's ``(name, kind, help, samples)``), with its labels."""
    found: dict[str, Metric] = {}
    for _, tree in source_modules():
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
                continue
            dicts = {t.id: tuple(const_str(k) or "" for k in a.value.keys)
                     for a in ast.walk(func) if isinstance(a, ast.Assign) and isinstance(a.value, ast.Dict)
                     for t in a.targets if isinstance(t, ast.Name)}
            for node in ast.walk(func):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr in ("counter", "gauge", "histogram") and len(node.args) >= 2:
                    name, help_ = const_str(node.args[0]), const_str(node.args[1])
                    labels_node = node.args[2] if len(node.args) > 2 else None
                    labels = tuple(const_str(e) or "" for e in labels_node.elts) \
                        if isinstance(labels_node, ast.Tuple) else ()
                    if name and help_:
                        found.setdefault(name, Metric(name, node.func.attr, help_, labels))
                elif isinstance(node, ast.Tuple) and len(node.elts) == 4 and const_str(node.elts[1]) in (
                        "counter", "gauge", "histogram"):
                    name, help_ = const_str(node.elts[0]), message_text(node.elts[2])
                    labels = ()
                    samples = node.elts[3]
                    if isinstance(samples, ast.List) and samples.elts and isinstance(samples.elts[0], ast.Tuple):
                        first = samples.elts[0].elts[0]
                        if isinstance(first, ast.Name):
                            labels = dicts.get(first.id, ())
                        elif isinstance(first, ast.Dict):
                            labels = tuple(const_str(k) or "" for k in first.keys)
                    if name and name.startswith("interlock_"):
                        found.setdefault(name, Metric(name, const_str(node.elts[1]) or "", help_, labels))
    return sorted(found.values(), key=lambda m: m.name)


def metrics_page() -> str:
    lines = ["# Metrics", "", GENERATED_NOTE.strip(), "",
             "`GET /metrics` (Prometheus text format; on unless `telemetry.metrics: false`) serves these, "
             "scanned from where the code registers them. With several workers, counters and histograms are "
             "summed across workers and gauges carry a `worker` label.", "",
             "| metric | type | labels | meaning |", "|---|---|---|---|"]
    for m in metrics_list():
        labels = ", ".join(f"`{label}`" for label in m.labels) or "—"
        lines.append(f"| `{m.name}` | {m.kind} | {labels} | {m.help} |")
    return "\n".join(lines) + "\n"

