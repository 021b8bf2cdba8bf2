"""The C extension of the package; everything else is in pyproject.toml (setuptools reads both).

The difficulty scorer's counts in C (``routing/_difficulty_counts.c``). Optional: without a C compiler the
install still succeeds and ``routing/difficulty_model.py`` counts in Python, giving the same scores, slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("interlock.routing._difficulty_counts",
                             sources=["src/interlock/routing/_difficulty_counts.c"], optional=True)])
