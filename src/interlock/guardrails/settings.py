"""The ``guardrails:`` section: what each detector does to a request.

.. code-block:: yaml

    guardrails:
      phone_region: US              # how bare phone numbers are read (phonenumbers' region codes)
      pii:              {action: redact, restore: true}  # cards, IBANs, SSNs, e-mail, phone, IP + patterns
      secrets:          {action: block}              # vendor keys, private keys, JWTs, password=...
      prompt_injection: {action: block, threshold: 0.5, indirect_threshold: 0.6, classifier: on}
      patterns:                     # the operator's own, part of the pii detector
        - {name: EMPLOYEE_ID, regex: '\\bE\\d{7}\\b', validator: none, context: [employee], context_window: 40}

Actions: ``off``, ``monitor`` (recorded on the log record, counted in ``/metrics``, named in
``x-interlock-guardrails``), ``redact`` (``pii`` and ``secrets``: each value replaced by a typed
placeholder such as ``[CARD_1]`` before the vendor sees it; ``restore: true`` puts the values back into
the answer), ``block`` (400 ``content_blocked`` before any vendor is called).
``fail_mode`` (``closed``, the default, or ``open``) says what happens when a detector cannot run.
Validated once in the launching process with file, line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import phonenumbers

from interlock.config import Settings
from interlock.configfile import ConfigError, Section
from interlock.guardrails.dlp import CustomPattern
from interlock.guardrails.injection import DIRECT_THRESHOLD, INDIRECT_THRESHOLD
from interlock.guardrails.modelfiles import INSTALL_HINT, missing_libraries

DETECTORS = ("pii", "secrets", "prompt_injection")
ACTIONS = ("off", "monitor", "redact", "block")
FAIL_MODES = ("closed", "open")
KEYS = ("phone_region", "patterns", *DETECTORS)
_VALIDATORS = ("none", "luhn", "mod97")


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    action: str = "off"
    fail_mode: str = "closed"
    #: Prompt injection only: the score at which a user turn (a tool result, retrieved text) is flagged.
    threshold: float = DIRECT_THRESHOLD
    indirect_threshold: float = INDIRECT_THRESHOLD
    #: ``redact`` only: the caller's answer gets the redacted values back in place of their placeholders.
    restore: bool = False
    #: Prompt injection only: the learned classifier beside the rules (``classifier.py``).
    classifier: bool = True

    @property
    def on(self) -> bool:
        return self.action != "off"


@dataclass(frozen=True, slots=True)
class GuardrailSettings:
    pii: DetectorSettings = DetectorSettings()
    secrets: DetectorSettings = DetectorSettings()
    prompt_injection: DetectorSettings = DetectorSettings()
    phone_region: str = "US"
    patterns: tuple[CustomPattern, ...] = field(default=())

    def detector(self, name: str) -> DetectorSettings:
        found: DetectorSettings = getattr(self, name)
        return found

    @property
    def enabled(self) -> bool:
        return any(self.detector(name).on for name in DETECTORS)

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardrailSettings:
        return cls.from_section(settings.section("guardrails"))

    @classmethod
    def from_section(cls, sec: Section) -> GuardrailSettings:
        sec.only(*KEYS)
        region = (sec.string("phone_region", "US") or "US").upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise sec.error(f"unknown region {region!r}: use a two-letter region code such as US, GB or DE",
                            "phone_region")
        return cls(
            pii=_detector(sec, "pii"),
            secrets=_detector(sec, "secrets"),
            prompt_injection=_detector(sec, "prompt_injection"),
            phone_region=region,
            patterns=_patterns(sec),
        )


def _detector(parent: Section, name: str) -> DetectorSettings:
    sec = parent.section(name)
    injection = name == "prompt_injection"
    sec.only(*(("action", "fail_mode", "threshold", "indirect_threshold", "classifier") if injection
               else ("action", "fail_mode", "restore")))
    action = sec.choice("action", "off", ("off", "monitor", "block") if injection else ACTIONS)
    restore = sec.boolean("restore", False)
    if restore and action != "redact":
        raise sec.error("restore puts redacted values back: it needs action: redact", "restore")
    threshold = sec.number("threshold", DIRECT_THRESHOLD, positive=True)
    indirect = sec.number("indirect_threshold", INDIRECT_THRESHOLD, positive=True)
    for key, value in (("threshold", threshold), ("indirect_threshold", indirect)):
        if value > 1.0:
            raise sec.error(f"a score threshold is in (0, 1], got {value:g}", key)
    classifier = injection and _on_off(sec, "classifier", True)
    if classifier and action != "off" and (missing := missing_libraries()):
        raise sec.error(f"the learned classifier needs {', '.join(missing)}: {INSTALL_HINT}; "
                        "or set classifier: off (rules only)", "classifier")
    return DetectorSettings(action, sec.choice("fail_mode", "closed", FAIL_MODES), threshold, indirect, restore,
                            classifier)


def _on_off(sec: Section, key: str, default: bool) -> bool:
    # YAML 1.1 reads a bare on/off as a boolean; a quoted "on"/"off" stays a string.
    value: object = sec.raw(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if value in ("on", "off"):
        return value == "on"
    raise sec.error(f"expected on or off, got {value!r}", key)


def _patterns(sec: Section) -> tuple[CustomPattern, ...]:
    raw = sec.raw("patterns")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise sec.error("expected a list of patterns ({name, regex, validator, context, context_window})",
                        "patterns")
    out: list[CustomPattern] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise sec.error("a pattern is a mapping with name and regex", i)
        p = Section(sec.doc, (*sec.path, "patterns", i), item, sec.environ)
        p.only("name", "regex", "validator", "context", "context_window")
        name = p.string("name", env=False)
        regex = p.string("regex", env=False)
        if not name or not re.fullmatch(r"[A-Z][A-Z0-9_]{0,63}", name):
            raise p.error("needs a name in capitals, digits and _ (it is the entity type: EMPLOYEE_ID)", "name")
        if name in names:
            raise p.error(f"pattern {name} is defined twice", "name")
        names.add(name)
        if not regex:
            raise p.error("needs a regex", "regex")
        context = p.raw("context", [])
        if not isinstance(context, list) or not all(isinstance(w, str) and w for w in context):
            raise p.error("expected a list of words", "context")
        try:
            out.append(CustomPattern(name, regex, validator=p.choice("validator", "none", _VALIDATORS),
                                     context=tuple(context),
                                     context_window=p.integer("context_window", 40, minimum=1)))
        except (re.error, ValueError) as exc:
            raise p.error(f"invalid: {exc}", "regex") from None
    return tuple(out)


__all__ = ["ACTIONS", "DETECTORS", "ConfigError", "DetectorSettings", "GuardrailSettings"]
