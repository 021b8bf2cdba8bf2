"""interlock: one OpenAI- and Anthropic-compatible endpoint in front of every model vendor."""

import os

__version__ = "0.1.0"

# The guardrails' learned classifier runs numpy on a worker thread per request; each gateway worker is one
# process per core, so one BLAS thread each (set before anything imports numpy; an operator's value wins).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
