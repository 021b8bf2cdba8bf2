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


#: Dataclasses built on every request, whose ``__init__`` is written out: mypyc compiles a class's own
#: ``__init__`` but leaves the one ``dataclasses`` generates interpreted (thousands of instructions a call).
WRITTEN_INITS = (
    ("interlock.core.trace", "RoutingTrace"), ("interlock.core.trace", "Candidate"),
    ("interlock.core.trace", "Attempt"), ("interlock.core.trace", "DifficultyDecision"),
    ("interlock.core.pricing", "Usage"), ("interlock.routing.strategies", "Needs"),
    ("interlock.cache.store", "Entry"), ("interlock.core.pricing", "Cost"),
    ("interlock.guardrails.guard", "Span"), ("interlock.guardrails.guard", "Detection"),
    ("interlock.guardrails.guard", "Piece"), ("interlock.guardrails.guard", "Checked"),
    ("interlock.guardrails.findings", "Finding"), ("interlock.guardrails.injection", "InjectionResult"),
    ("interlock.guardrails.answer", "_Tally"), ("interlock.guardrails.answer", "_Channel"),
    ("interlock.wire.sse", "Event"),
)


@pytest.mark.parametrize(("module", "name"), WRITTEN_INITS)
def test_written_out_inits_match_the_fields(module: str, name: str) -> None:
    """Each written-out ``__init__`` takes the dataclass's fields in order, with their defaults (a default
    factory as None), and sets every one: a field added to the class but not to its ``__init__`` fails here."""
    import dataclasses
    import inspect

    cls = getattr(importlib.import_module(module), name)
    fields = dataclasses.fields(cls)
    if Path(interlock.__file__).resolve().parent == SRC.resolve():  # the sources: the signature can be read
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert [p.name for p in params] == [f.name for f in fields]
        for p, f in zip(params, fields, strict=True):
            if f.default is not dataclasses.MISSING:
                assert p.default == f.default, f.name
            elif f.default_factory is not dataclasses.MISSING:
                assert p.default is None, f.name
            else:
                assert p.default is inspect.Parameter.empty, f.name
    else:  # the compiled build (which checks the arguments' types): the point of writing it out
        assert type(cls.__init__).__name__ == "wrapper_descriptor", (name, type(cls.__init__))
        return
    # Every field set, the required ones from distinct values.
    required = [f for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    sentinels = [object() for _ in required]
    made = cls(*sentinels)
    for f, value in zip(required, sentinels, strict=False):
        assert getattr(made, f.name) is value, f.name
    for f in fields[len(required):]:
        expected = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        assert getattr(made, f.name) == expected, f.name
