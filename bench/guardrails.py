"""Quality and speed of the guardrail detectors on the labelled data (dev split; fitted on train only).

    PYTHONPATH=src .venv/bin/python bench/guardrails.py [--data ../shared/guardrails] [--tune] [--no-baseline]

Prints markdown tables: prompt injection per source (rule-based detector, the default detector: rules
plus the learned classifier, and a TF-IDF + logistic regression baseline trained on the train split),
DLP per entity type (span overlap), the speed of DLP + rule-based injection scanning in µs per KiB over
a mix of 1-8 KiB prompts, and the learned classifier's milliseconds per request on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from guardrails_data import (
    DEFAULT_DATA,
    INDIRECT_SOURCES,
    NOSEYPARKER_TYPES,
    PI_SOURCES,
    PRESIDIO_TYPES,
    SPEED_MIXES,
    VENDOR_KEY_TYPES,
    Counts,
    PiRow,
    fmt,
    load_pi,
    load_pii,
    overlaps,
    speed_mix,
)
from interlock.guardrails import DlpDetector
from interlock.guardrails.findings import SECRET_TYPES
from interlock.guardrails.injection import InjectionDetector
from interlock.guardrails.modelfiles import ModelUnavailable

if TYPE_CHECKING:
    from interlock.guardrails.classifier import InjectionClassifier

FPR_TARGET = 0.02


def rule_scores(det: InjectionDetector, rows: list[PiRow]) -> list[float]:
    return [det.score(r.text, indirect=r.source in INDIRECT_SOURCES) for r in rows]


def tune(rows: list[PiRow], scores: list[float], indirect: bool) -> float:
    """Direct prompts: the lowest threshold whose false-positive rate on the train rows' benign prompts stays
    within the target. Indirect (e-mails): the threshold with the best accuracy on train."""
    pick = [(s, r.injection) for s, r in zip(scores, rows, strict=True) if (r.source in INDIRECT_SOURCES) == indirect]
    benign = [s for s, inj in pick if not inj]
    candidates = sorted({round(s, 4) for s, _ in pick if s > 0} | {1.0})
    if indirect:
        return max(candidates, key=lambda t: (sum((s >= t) == inj for s, inj in pick), -t))
    for t in candidates:
        if not benign or sum(s >= t for s in benign) / len(benign) <= FPR_TARGET:
            return t
    return 1.0


def pi_table(title: str, rows: list[PiRow], predict: Callable[[PiRow], bool]) -> None:
    per: dict[str, Counts] = {s: Counts() for s in PI_SOURCES}
    direct = Counts()
    for r in rows:
        p = predict(r)
        per[r.source].add(r.injection, p)
        if r.source not in INDIRECT_SOURCES:
            direct.add(r.injection, p)
    print(f"\n#### {title}\n")
    print("| source | rows | precision | recall | F1 | FPR (benign) | accuracy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s, c in [*per.items(), ("overall (direct prompts)", direct)]:
        n = c.tp + c.fp + c.fn + c.tn
        acc = fmt(c.accuracy) if s in INDIRECT_SOURCES else ""
        print(f"| {s} | {n} | {fmt(c.precision)} | {fmt(c.recall)} | {fmt(c.f1)} | {fmt(c.fpr)} | {acc} |")


def baseline(train: list[PiRow]) -> Callable[[PiRow], bool]:
    # Imported here: scikit-learn is a bench-only dependency (the dev extra).
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True),
        ),
        LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced"),
    )
    model.fit([r.text for r in train], [r.injection for r in train])
    return lambda r: bool(model.predict([r.text])[0])


def bench_pi(data: Path, show_tune: bool, with_baseline: bool) -> None:
    train, dev = load_pi(data, "train"), load_pi(data, "dev")
    det = InjectionDetector()
    scores = rule_scores(det, train)
    t_direct, t_indirect = tune(train, scores, False), tune(train, scores, True)
    print(f"## Prompt injection (dev)\n\nthresholds chosen on train: direct {t_direct:.3f} "
          f"(shipped {det.threshold}), indirect {t_indirect:.3f} (shipped {det.indirect_threshold})")
    if show_tune:
        pi_table("rules on train (shipped thresholds)", train, lambda r: det.check(
            r.text, r.source in INDIRECT_SOURCES).flagged)
    pi_table("rule-based detector (shipped thresholds)", dev,
             lambda r: det.check(r.text, r.source in INDIRECT_SOURCES).flagged)
    classifier = load_classifier()
    if classifier is not None:
        full = InjectionDetector(classifier=classifier)
        if show_tune:
            pi_table("default detector on train (shipped thresholds; the head was fitted here)", train,
                     lambda r: full.check(r.text, r.source in INDIRECT_SOURCES).flagged)
        pi_table("default detector: rules + learned classifier (shipped thresholds)", dev,
                 lambda r: full.check(r.text, r.source in INDIRECT_SOURCES).flagged)
    if with_baseline:
        pi_table("baseline: TF-IDF (words 1-2, chars 3-5) + logistic regression, trained on train", dev,
                 baseline(train))


def load_classifier() -> InjectionClassifier | None:
    # Imported here: numpy and the model package are the classifier extra, not the base install.
    try:
        from interlock.guardrails.classifier import InjectionClassifier

        return InjectionClassifier()
    except (ImportError, ModelUnavailable) as exc:
        print(f"\n(learned classifier not measured: {exc})")
        return None


def classifier_speed(data: Path, rounds: int) -> None:
    """Milliseconds per request of the learned classifier alone (encoder + head; the rules not counted),
    BLAS held to one thread: per text the median of ``rounds`` runs, then p50 and p95 over the texts."""
    from threadpoolctl import threadpool_limits

    classifier = load_classifier()
    if classifier is None:
        return
    rows = load_pi(data, "dev")
    print(f"\n## Learned classifier speed (one thread; median of {rounds} runs per text)\n")
    print("| texts | n | tokens p50 | ms p50 | ms p95 | ms max |")
    print("|---|---:|---:|---:|---:|---:|")
    with threadpool_limits(limits=1):
        classifier.probability("warm up", 0.0)
        for label, indirect in (("dev prompts (direct)", False), ("dev e-mails (indirect)", True)):
            texts = [r.text for r in rows if (r.source in INDIRECT_SOURCES) == indirect]
            times, tokens = [], []
            for text in texts:
                runs = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    classifier.probability(text, 0.0, indirect)
                    runs.append(time.perf_counter() - t0)
                times.append(sorted(runs)[len(runs) // 2] * 1e3)
                tokens.append(sum(len(w) for w in classifier.encoder.windows(text)))
            times.sort()
            tokens.sort()
            print(f"| {label} | {len(texts)} | {tokens[len(tokens) // 2]} | {times[len(times) // 2]:.1f} | "
                  f"{times[int(len(times) * 0.95)]:.1f} | {times[-1]:.1f} |")


def bench_presidio(data: Path, det: DlpDetector, split: str) -> None:
    rows = load_pii(data, "pii_presidio", split)
    print(f"\n## DLP: pii_presidio {split} (types in checked_types only; a finding matches an overlapping entity)\n")
    print("| type | entities | found | recall | findings | precision |")
    print("|---|---:|---:|---:|---:|---:|")
    for t in PRESIDIO_TYPES:
        counts = [0, 0, 0, 0]
        for r in rows:
            if t not in r["checked_types"]:
                continue
            truth = [(e["start"], e["end"]) for e in r["entities"] if e["type"] == t]
            spans = [(f.start, f.end) for f in det.scan(r["text"]) if f.type == t]
            tally(counts, truth, spans, truth)
        print_tally(t, counts)


def tally(counts: list[int], truth: list[tuple[int, int]], spans: list[tuple[int, int]],
          every: list[tuple[int, int]]) -> None:
    """Add one row to [entities, found, findings, correct findings]: spans match by overlap."""
    counts[0] += len(truth)
    counts[1] += sum(any(overlaps(e, s) for s in spans) for e in truth)
    counts[2] += len(spans)
    counts[3] += sum(any(overlaps(s, e) for e in every) for s in spans)


def print_tally(name: str, counts: list[int]) -> None:
    ents, found, nfind, good = counts
    print(f"| {name} | {ents} | {found} | {fmt(found / ents if ents else None)} | {nfind} | "
          f"{fmt(good / nfind if nfind else None)} |")


def bench_noseyparker(data: Path, det: DlpDetector, split: str) -> None:
    rows = load_pii(data, "pii_noseyparker", split)
    print(f"\n## DLP: pii_noseyparker {split} (secrets; a finding is correct when it overlaps any labelled secret)\n")
    print("| type | entities | found | recall | findings | precision |")
    print("|---|---:|---:|---:|---:|---:|")
    scanned = [(r, [f for f in det.scan(r["text"]) if f.type in SECRET_TYPES]) for r in rows]
    groups: list[tuple[str, frozenset[str], set[str]]] = [
        (t, frozenset(NOSEYPARKER_TYPES[t]), {t}) for t in NOSEYPARKER_TYPES
    ]
    vendor_rules = frozenset(n for t in VENDOR_KEY_TYPES for n in NOSEYPARKER_TYPES[t])
    groups.append(("vendor keys (all above but PEM/JWT/AWS secret)", vendor_rules, set(VENDOR_KEY_TYPES)))
    groups.append(("GENERIC_SECRET", frozenset(), {"GENERIC_SECRET"}))
    groups.append(("any secret, all 170 formats", frozenset(["*"]), set(SECRET_TYPES)))
    for name, rule_names, my_types in groups:
        counts = [0, 0, 0, 0]
        for r, findings in scanned:
            truth = [(e["start"], e["end"]) for e in r["entities"] if "*" in rule_names or e["type"] in rule_names]
            every = [(e["start"], e["end"]) for e in r["entities"]]
            spans = [(f.start, f.end) for f in findings if f.type in my_types]
            tally(counts, truth, spans, every)
        print_tally(name, counts)
    negatives = [r for r, _ in scanned if not r["has_secret"]]
    flagged = sum(bool(f) for r, f in scanned if not r["has_secret"])
    print(f"\nrows without a secret (near misses): {len(negatives)}, flagged: {flagged}")


def speed(data: Path, seconds: float) -> None:
    """µs per KiB of DLP + rule-based injection, one thread, fastest of repeated rounds."""
    dlp, pi = DlpDetector(), InjectionDetector()
    print("\n## Speed (one core; 64 prompts of 1-8 KiB)\n")
    print("| mix | DLP µs/KiB | injection µs/KiB | both µs/KiB |")
    print("|---|---:|---:|---:|")
    for label, injections, ascii_only in SPEED_MIXES:
        prompts = speed_mix(data, injections, ascii_only)
        kib = sum(len(p.encode()) for p in prompts) / 1024
        cells = []
        for fn in (dlp.scan, pi.score, lambda t: (dlp.scan(t), pi.score(t))):
            rounds = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline or len(rounds) < 3:
                t0 = time.perf_counter()
                for p in prompts:
                    fn(p)
                rounds.append((time.perf_counter() - t0) * 1e6 / kib)
            # The fastest round: on a shared machine the others measure the neighbours too.
            cells.append(f"{min(rounds):.1f}")
        print(f"| {label} ({kib:.0f} KiB) | {' | '.join(cells)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--tune", action="store_true", help="also print the rule-based detector on train")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0, help="per speed measurement")
    ap.add_argument("--only", choices=("pi", "dlp", "speed", "classifier-speed"))
    ap.add_argument("--rounds", type=int, default=3, help="runs per text for the classifier's speed")
    ap.add_argument("--pii-split", default="dev", help="dev, train or dev,train (train: the rules were reviewed on it)")
    args = ap.parse_args()
    if not (args.data / "pi").is_dir():
        sys.exit(f"no data at {args.data} (pass --data)")
    if args.only in (None, "pi"):
        bench_pi(args.data, args.tune, not args.no_baseline)
    if args.only in (None, "dlp"):
        det = DlpDetector()
        for split in args.pii_split.split(","):
            bench_presidio(args.data, det, split)
            bench_noseyparker(args.data, det, split)
    if args.only in (None, "speed"):
        speed(args.data, args.seconds)
    if args.only in (None, "classifier-speed"):
        classifier_speed(args.data, args.rounds)


if __name__ == "__main__":
    main()
