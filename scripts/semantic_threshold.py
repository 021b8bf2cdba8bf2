"""The semantic cache's threshold figures (docs/guides/caching.md): the cosine similarity of each pair in
tests/semantic_pairs.py with the shipped model, and how many pairs of each kind pass each threshold: by the
embedding alone, and through the cache (where a pair whose numbers or negations differ is in two buckets).

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python scripts/semantic_threshold.py
"""

from __future__ import annotations

from tests.semantic_pairs import DIFFERENT, PARAPHRASES

from interlock.cache.semantic_prompt import exact_terms
from interlock.guardrails.encoder import shared_encoder
from interlock.guardrails.modelfiles import model_dir

THRESHOLDS = (0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99)


def main() -> None:
    encoder = shared_encoder(model_dir())

    def sim(a: str, b: str) -> float:
        x, y = encoder.embed(a), encoder.embed(b)
        assert x is not None and y is not None, "a pair longer than one window"
        return float(x @ y)

    kinds = {"paraphrases": PARAPHRASES, "different": DIFFERENT}
    sims = {kind: sorted((sim(a, b), a, b) for a, b in pairs) for kind, pairs in kinds.items()}
    for kind, rows in sims.items():
        print(f"{kind} ({len(rows)} pairs; * another bucket: numbers or negations differ)")
        for s, a, b in rows:
            print(f"  {s:.4f}{' ' if exact_terms(a) == exact_terms(b) else '*'} {a} | {b}")
    print("threshold  paraphrases hit (embedding / cache)  different hit (embedding / cache)")
    for t in THRESHOLDS:
        counts = []
        for kind in kinds:
            rows = sims[kind]
            alone = sum(s >= t for s, _, _ in rows)
            cached = sum(s >= t and exact_terms(a) == exact_terms(b) for s, a, b in rows)
            counts.append(f"{alone:2d} / {cached:2d} of {len(rows)}")
        print(f"  {t:.2f}     {counts[0]}                      {counts[1]}")


if __name__ == "__main__":
    main()
