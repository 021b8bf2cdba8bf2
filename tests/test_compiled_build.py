"""The compiled build (scripts/build_fast.py, ``make fast``): its module list, and that it is what runs.

``make unit-fast`` runs this file with ``PYTHONPATH=build/fast``: there every module of ``COMPILED``
must be an extension module, or the compiled tests would silently test the Python sources.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

import interlock

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "interlock"


def _build_fast() -> object:
    spec = importlib.util.spec_from_file_location("build_fast", ROOT / "scripts" / "build_fast.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPILED: tuple[str, ...] = _build_fast().COMPILED  # type: ignore[attr-defined]


def _module(path: str) -> str:
    return "interlock." + path.removesuffix(".py").replace("/", ".")


def test_every_compiled_module_exists_once() -> None:
    assert len(set(COMPILED)) == len(COMPILED)
    for path in COMPILED:
        assert (SRC / path).is_file(), path


def test_the_running_package_is_the_one_the_build_says() -> None:
    """From the sources: every module is Python. From build/fast: every listed module is compiled."""
    compiled = Path(interlock.__file__).resolve().parent != SRC.resolve()
    if not compiled:
        pytest.skip("running the sources (make unit-fast runs this against the compiled build)")
    for path in COMPILED:
        module = importlib.import_module(_module(path))
        assert module.__file__ is not None and module.__file__.endswith(".so"), (path, module.__file__)
