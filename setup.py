"""The C extensions of the package; everything else is in pyproject.toml (setuptools reads both).

Both are optional: without a C compiler the install still succeeds and the Python they stand in for runs,
giving the same results, slower.
- ``routing/_difficulty_counts.c``: the difficulty scorer's counts (else ``routing/difficulty_model.py``'s).
- ``guardrails/_gates.c``: the DLP scan's gates (else ``guardrails/gates.py``'s ``gates_py``).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("interlock.routing._difficulty_counts", sources=["src/interlock/routing/_difficulty_counts.c"],
              optional=True),
    Extension("interlock.guardrails._gates", sources=["src/interlock/guardrails/_gates.c"],
              optional=True),
])
