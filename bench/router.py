"""The difficulty router's scorer on the dev split: quality-cost curves, APGR, CPT, against baselines; its speed.

    PYTHONPATH=src .venv/bin/python bench/router.py [--data ../shared/routing] [--quick] [--embedding]

Per benchmark (MMLU and GSM8K dev; MT-Bench train+dev pooled, 51 prompts: too few, for reference only), with
RouteLLM's metric definitions (bench/router_metrics.py): the 11-point quality-cost curve, APGR, CPT(50%) and
CPT(80%) of
- the shipped scorer (src/interlock/routing/difficulty_weights.json, fitted on train only),
- TF-IDF (word 1-2-grams) + logistic regression baselines fitted here on MMLU+GSM8K train: label "only the
  strong model is right" (RouteLLM's "strong wins"), and a multinomial over the four outcome cells scored
  P(F,T) - P(T,F) (the shipped scorer's label),
- prompt length in characters, and RouteLLM's ``random`` router (10 seeded runs, points averaged),
- RouteLLM's best published router per benchmark (paper v4, full benchmarks, not these splits).
Then the scorer's latency on one core (50, 500, 5,000 o200k tokens of dev text), the memory its weights take,
and the all-MiniLM-L6-v2 encoder's latency for comparison; ``--embedding`` also fits a logistic regression on
its embeddings (train) and scores dev with it (encodes ~10k prompts: minutes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import router_metrics as rm
from harness import BenchError, bench_main

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "routing"
CACHE = Path.home() / ".cache" / "interlock-bench"
# RouteLLM paper v4, the best router per benchmark by APGR (shared/routing/README.md): (router, APGR, CPT50, CPT80).
PUBLISHED = {
    "mmlu": ("sw_ranking +gold (T2)", 0.603, 0.3540, 0.7155),
    "gsm8k": ("causal_llm +judge (T3)", 0.622, 0.3364, 0.6326),
    "mt-bench": ("mf +judge (T1)", 0.802, 0.1340, 0.3131),
}
PUBLISHED_RANDOM = {"mmlu": (0.500, 0.5007, 0.7993), "gsm8k": (0.497, 0.5000, 0.8008),
                    "mt-bench": (0.500, 0.4903, 0.7808)}


@dataclass
class Row:
    prompt: str
    benchmark: str
    weak: float
    strong: float


def load(data: Path, benchmark: str, split: str) -> list[Row]:
    path = data / f"{benchmark}.{split}.jsonl"
    if not path.exists():
        raise BenchError(f"{path} is missing (--data points at the routing data set)")
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):  # not splitlines(): U+2028 inside prompts
        if line.strip():
            r = json.loads(line)
            if benchmark == "mt-bench":
                rows.append(Row(r["prompt"], benchmark, float(r["weak_score"]), float(r["strong_score"])))
            else:
                rows.append(Row(r["prompt"], benchmark, float(r["weak_correct"]), float(r["strong_correct"])))
    return rows


def tfidf_baseline(train: list[Row], cells: bool = False) -> Callable[[list[str]], list[float]]:
    """TF-IDF word 1-2-grams + logistic regression (C=1). Label "only the strong model is right", or with
    ``cells`` a multinomial over the four outcome cells scored P(F,T) - P(T,F)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x = vec.fit_transform([r.prompt for r in train])
    if cells:
        multi = LogisticRegression(C=1.0, max_iter=5000).fit(x, [int(r.weak) * 2 + int(r.strong) for r in train])

        def gain(texts: list[str]) -> list[float]:
            p = multi.predict_proba(vec.transform(texts))
            return [float(v) for v in p[:, 1] - p[:, 2]]
        return gain
    model = LogisticRegression(C=1.0, max_iter=5000).fit(x, [r.strong > r.weak for r in train])
    return lambda texts: [float(p) for p in model.predict_proba(vec.transform(texts))[:, 1]]


def embedding_router(train: list[Row]) -> Callable[[list[str]], list[float]]:
    """A multinomial logistic regression over the four outcome cells on the encoder's embedding (mean over
    windows); score P(F,T) - P(T,F)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    embed = embeddings
    x = embed([r.prompt for r in train])
    cells = [int(r.weak) * 2 + int(r.strong) for r in train]
    model = LogisticRegression(C=1.0, max_iter=5000).fit(x, cells)

    def score(texts: list[str]) -> list[float]:
        p = model.predict_proba(np.asarray(embed(texts)))
        return [float(v) for v in p[:, 1] - p[:, 2]]
    return score


def embeddings(texts: list[str]) -> list[list[float]]:
    """The encoder's embedding of each text (mean over its windows), cached on disk by the texts' hash."""
    import numpy as np

    from interlock.guardrails.encoder import shared_encoder
    from interlock.guardrails.modelfiles import model_dir

    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"router-embeddings-{key}.npy"
    if path.exists():
        return [list(map(float, v)) for v in np.load(path)]
    enc = shared_encoder(model_dir())
    t0 = time.monotonic()
    out = np.stack([enc.encode(t).mean(axis=0) for t in texts])
    print(f"[bench] encoded {len(texts)} prompts in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return [list(map(float, v)) for v in out]


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def table(name: str, rows: list[Row], routers: dict[str, list[float] | list[rm.Point]], note: str) -> None:
    weak, strong = [r.weak for r in rows], [r.strong for r in rows]
    r_w, r_s = rm.references(weak, strong)
    summaries = {k: rm.summarize(v if isinstance(v[0], rm.Point) else rm.curve(v, weak, strong), weak, strong)  # type: ignore[arg-type]
                 for k, v in routers.items()}
    print(f"\n### {name}: {len(rows)} prompts{note}; weak {r_w:.4g}, strong {r_s:.4g}\n")
    print("| router | APGR | CPT(50%) | CPT(80%) |\n|---|---:|---:|---:|")
    for k, s in summaries.items():
        print(f"| {k} | {s.apgr:.3f} | {pct(s.cpt50)} | {pct(s.cpt80)} |")
    bench = rows[0].benchmark
    label, apgr, c50, c80 = PUBLISHED[bench]
    print(f"| RouteLLM published best: {label}, full benchmark | {apgr:.3f} | {pct(c50)} | {pct(c80)} |")
    ra, r50, r80 = PUBLISHED_RANDOM[bench]
    print(f"| RouteLLM published random, full benchmark | {ra:.3f} | {pct(r50)} | {pct(r80)} |")
    print("\nQuality-cost curve (11 decile-edge thresholds): strong share / quality / PGR\n")
    names = list(summaries)
    print("| k | " + " | ".join(names) + " |\n|---:|" + "---|" * len(names))
    for i in range(len(next(iter(summaries.values())).points)):
        cells = [f"{pct(p.strong_share)} / {p.quality:.4g} / {p.pgr:.3f}" for p in (summaries[n].points[i] for n in names)]
        print(f"| {i} | " + " | ".join(cells) + " |")


def prompts_of(rows: Sequence[Row], tokens: int) -> str:
    from interlock.catalog.tokens import get_encoding

    enc = get_encoding("o200k_base")  # the rank table packaged with interlock: nothing is downloaded
    ids: list[int] = []
    for r in rows:
        ids.extend(enc.encode(r.prompt + "\n\n"))
        if len(ids) >= tokens:
            break
    return enc.decode(ids[:tokens])


def timing(fn: Callable[[str], object], text: str, rounds: int) -> tuple[float, float]:
    fn(text)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(text)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


_LOAD_PROBE = """
import json, time, tracemalloc, sys
sys.path.insert(0, sys.argv[1])
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
from interlock.routing.difficulty_model import DifficultyScorer
before = rss()
t0 = time.perf_counter()
kept = DifficultyScorer.load()
load = time.perf_counter() - t0
after = rss()
tracemalloc.start()
again = DifficultyScorer.load()
traced = tracemalloc.get_traced_memory()[0]
print(json.dumps({"load_ms": load * 1e3, "rss_mb": after - before, "traced_mb": traced / 1e6}))
"""


def measure_load() -> dict[str, float]:
    """Load time and memory of the scorer in a fresh interpreter (this one holds the data and sklearn)."""
    import subprocess

    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run([sys.executable, "-c", _LOAD_PROBE, src], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def speed(dev: list[Row], rounds: int, with_encoder: bool) -> None:
    from interlock.routing.difficulty_model import WEIGHTS_PATH, DifficultyScorer

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    load = measure_load()
    print(f"\n### Scorer speed (one core) and memory\n\nweights {WEIGHTS_PATH.stat().st_size / 1e6:.2f} MB on disk; "
          f"in a fresh process: load {load['load_ms']:.0f} ms, RSS +{load['rss_mb']:.1f} MB, "
          f"tracemalloc {load['traced_mb']:.1f} MB (a second load, traced)\n")
    scorer = DifficultyScorer.load()
    print("| prompt (o200k tokens) | scorer p50 | scorer p99 |" + (" MiniLM encoder p50 | MiniLM p99 |" if with_encoder else ""))
    print("|---:|---:|---:|" + ("---:|---:|" if with_encoder else ""))
    encoder = None
    if with_encoder:
        try:
            from interlock.guardrails.encoder import shared_encoder
            from interlock.guardrails.modelfiles import model_dir

            encoder = shared_encoder(model_dir())
        except Exception as exc:  # noqa: BLE001 - optional comparison: report and go on
            print(f"(encoder unavailable: {exc})")
    for n in (50, 500, 5000):
        text = prompts_of(dev, n)
        p50, p99 = timing(scorer.score, text, rounds)
        line = f"| {n} | {p50:.2f} ms | {p99:.2f} ms |"
        if encoder is not None and n <= 500:
            e50, e99 = timing(encoder.encode, text, max(5, rounds // 10))
            line += f" {e50:.1f} ms | {e99:.1f} ms |"
        elif encoder is not None:
            line += " - | - |"
        print(line)


def run(args: argparse.Namespace) -> int:
    from interlock.routing.difficulty_model import DifficultyScorer

    scorer = DifficultyScorer.load()
    print(f"## Difficulty scorer: {scorer.name}\n\n`{' '.join(sys.argv)}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    data = args.data
    train = {b: load(data, b, "train") for b in ("mmlu", "gsm8k", "mt-bench")}
    dev = {b: load(data, b, "dev") for b in ("mmlu", "gsm8k", "mt-bench")}
    baseline = None if args.quick else tfidf_baseline(train["mmlu"] + train["gsm8k"])
    baseline_cells = None if args.quick else tfidf_baseline(train["mmlu"] + train["gsm8k"], cells=True)
    emb = embedding_router(train["mmlu"] + train["gsm8k"]) if args.embedding else None
    for bench, note in (("mmlu", " (dev)"), ("gsm8k", " (dev)"),
                        ("mt-bench", " (train+dev pooled: too small, for reference only)")):
        rows = dev[bench] + (train[bench] if bench == "mt-bench" else [])
        texts = [r.prompt for r in rows]
        weak, strong = [r.weak for r in rows], [r.strong for r in rows]
        routers: dict[str, list[float] | list[rm.Point]] = {"shipped scorer": [scorer.score(t) for t in texts]}
        if baseline is not None:
            routers["TF-IDF + LR"] = baseline(texts)
        if baseline_cells is not None:
            routers["TF-IDF + LR (4 cells)"] = baseline_cells(texts)
        routers["prompt length"] = [float(len(t)) for t in texts]
        if emb is not None:
            routers["MiniLM embedding + LR"] = emb(texts)
        routers["random (10 runs)"] = rm.random_curve(weak, strong, runs=10, seed=0)
        table(bench, rows, routers, note)
    speed(dev["mmlu"] + dev["gsm8k"], 30 if args.quick else 300, with_encoder=not args.quick)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--quick", action="store_true", help="no TF-IDF baseline, no encoder, fewer timing rounds")
    ap.add_argument("--embedding", action="store_true",
                    help="also fit and score a logistic regression on MiniLM embeddings (encodes ~10k prompts)")
    args = ap.parse_args()
    return bench_main("bench-router", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
