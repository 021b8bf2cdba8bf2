"""The session summary of the conformance layer: counts, violations per test, extra fields."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conformance.check import Checker, Violation


@dataclass
class ConformanceReport:
    #: (test id, violation, exempt)
    seen: list[tuple[str, Violation, bool]] = field(default_factory=list)

    def claim(self, test: str, found: list[Violation], *, exempt: bool) -> None:
        self.seen.extend((test, v, exempt) for v in found)

    def summarise(self, checker: Checker, out: Any, json_path: str | None) -> None:
        if not checker.checked and not self.seen:
            return
        failing = [(t, v) for t, v, exempt in self.seen if not exempt]
        exempt = [(t, v) for t, v, e in self.seen if e]
        out.write_sep("-", "wire conformance (tests/conformance)")
        out.write_line(f"checked {sum(checker.checked.values())} answers/events; "
                       f"{len(failing)} violations, {len(exempt)} in exempt tests")
        for kind, n in sorted(checker.checked.items()):
            out.write_line(f"  {n:6d}  {kind}")
        if checker.skipped:
            out.write_line(f"not checked: {sum(checker.skipped.values())} answers on {len(checker.skipped)} "
                           "routes without a vendor schema or read in part (listed in --conformance-json)")
        if checker.extras:
            out.write_line("extra fields (allowed by the schema):")
            for (schema, name), n in sorted(checker.extras.items()):
                out.write_line(f"  {n:6d}  {schema}: {name}")
        by_schema = Counter(f"{v.schema} {v.location}: {v.message[:90]}" for _, v in failing)
        if by_schema:
            out.write_line("violations by schema location:")
            for line, n in by_schema.most_common():
                out.write_line(f"  {n:6d}  {line}")
        if json_path:
            Path(json_path).write_text(json.dumps({
                "checked": dict(checker.checked), "skipped": dict(checker.skipped),
                "extras": [{"schema": s, "field": f, "count": n} for (s, f), n in sorted(checker.extras.items())],
                "violations": [{"test": t, "exempt": e, **vars(v)} for t, v, e in self.seen],
            }, indent=1, sort_keys=True) + "\n")
            out.write_line(f"conformance summary written to {json_path}")
