"""Person names and places through Presidio's analyzer: an optional part of the ``pii`` detector.

The rules of ``DlpDetector`` cannot find names or addresses; a named-entity model can. interlock does
not ship one: an operator who wants them installs ``interlock[presidio]`` (Presidio's analyzer and
spaCy) and a spaCy pipeline (``python -m spacy download en_core_web_lg``, or a directory), and names it:

.. code-block:: yaml

    guardrails:
      pii: {action: redact}
      ner: {model: en_core_web_lg, entities: [PERSON, LOCATION], score_threshold: 0.6}

Only the entity types listed are asked for (Presidio's pattern recognizers for cards, e-mail and the
like are not run: the rules above cover those, Luhn- and checksum-validated). What the model finds
joins the ``pii`` findings with Presidio's type names (``PERSON``, ``LOCATION``, ``NRP``, ...); where it
overlaps a rule finding, the rule's wins.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock.guardrails.findings import Finding

DEFAULT_ENTITIES = ("PERSON", "LOCATION")
#: The types Presidio's NER recognizer (spaCy) reports; the rest are pattern recognizers interlock has.
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "ORGANIZATION", "DATE_TIME"})


@dataclass(frozen=True, slots=True)
class NerSettings:
    #: A spaCy package name (``en_core_web_lg``) or a directory holding a saved pipeline.
    model: str
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    score_threshold: float = 0.5
    language: str = "en"


def missing(settings: NerSettings) -> str | None:
    """Why the model cannot be loaded here (checked at start without loading it), or None."""
    for module, extra in (("presidio_analyzer", "interlock[presidio]"), ("spacy", "interlock[presidio]")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install '{extra}'"
    if Path(settings.model).is_dir():
        return None
    if importlib.util.find_spec(settings.model) is None:
        return (f"spaCy pipeline {settings.model!r} is not installed (python -m spacy download {settings.model}), "
                "and it is not a directory")
    return None


class PresidioNer:
    """Presidio's analyzer over one spaCy pipeline, loaded once per worker (seconds for a large model)."""

    def __init__(self, settings: NerSettings) -> None:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        self.settings = settings
        provider = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy", "models": [{"lang_code": settings.language, "model_name": settings.model}]})
        # Only the model's recognizer: Presidio's pattern recognizers repeat the rules (less strictly), and
        # some look things up on the network (tldextract's suffix list).
        registry = RecognizerRegistry(recognizers=[SpacyRecognizer(supported_language=settings.language)],
                                      supported_languages=[settings.language])
        self._engine: Any = AnalyzerEngine(registry=registry, nlp_engine=provider.create_engine(),
                                           supported_languages=[settings.language])
        self._entities = list(settings.entities)
        # The guard may run on the classifier's worker threads; spaCy does not promise a pipeline is safe to
        # call from two threads at once.
        self._lock = threading.Lock()

    def scan(self, text: str) -> list[Finding]:
        with self._lock:
            results = self._engine.analyze(text=text, language=self.settings.language, entities=self._entities,
                                           score_threshold=self.settings.score_threshold)
        return sorted((Finding(r.entity_type, r.start, r.end, float(r.score)) for r in results),
                      key=lambda f: (f.start, f.end))


def merge(rules: list[Finding], ner: list[Finding]) -> list[Finding]:
    """The rule findings, plus the model's that overlap none of them, in text order."""
    kept = [f for f in ner if not any(f.overlaps(r) for r in rules)]
    if not kept:
        return rules
    return sorted([*rules, *kept], key=lambda f: (f.start, f.end))
