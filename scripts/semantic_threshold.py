"""The semantic cache's threshold figures (docs/cache-semantic.md): the cosine similarity of each pair in
tests/semantic_pairs.py with the shipped model, and how many pairs of each kind pass each threshold.

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python scripts/semantic_threshold.py
"""

from __future__ import annotations

from tests.semantic_pairs import DIFFERENT, PARAPHRASES

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
        print(f"{kind} ({len(rows)} pairs)")
        for s, a, b in rows:
            print(f"  {s:.4f}  {a} | {b}")
    print("threshold  paraphrases hit  different hit")
    for t in THRESHOLDS:
        p = sum(s >= t for s, _, _ in sims["paraphrases"])
        d = sum(s >= t for s, _, _ in sims["different"])
        print(f"  {t:.2f}     {p:2d}/{len(PARAPHRASES)}            {d:2d}/{len(DIFFERENT)}")


if __name__ == "__main__":
    main()
