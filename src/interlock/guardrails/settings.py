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

Per project (``projects:`` below, or ``guardrails`` on a project of the admin API) a setting may only
tighten the operator's floor: actions order ``off < monitor < redact < block``, a lower threshold is
tighter, ``fail_mode: closed`` is tighter than ``open``, ``output: true`` (answers scanned) than ``false``. :func:`effective` takes the tighter of floor and
project per field, so a floor raised later wins; :func:`looser` names a project setting looser than its
floor, which is refused when it is set. ``restore`` is not an order: it changes what the caller gets
back, never what the vendor sees, so the most specific setting wins, and it applies only while the
effective action is ``redact``. ``patterns`` and ``phone_region`` are global.

.. code-block:: yaml

    guardrails:
      pii: {action: monitor}
      projects:
        billing: {pii: {action: block}, prompt_injection: {action: block, threshold: 0.4}}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import phonenumbers

from interlock.config import Settings
from interlock.configfile import ConfigError, Section
from interlock.guardrails.dlp import CustomPattern
from interlock.guardrails.injection import DIRECT_THRESHOLD, INDIRECT_THRESHOLD
from interlock.guardrails.modelfiles import INSTALL_HINT, missing_libraries
from interlock.guardrails.ner import DEFAULT_ENTITIES, NER_ENTITIES, NerSettings
from interlock.guardrails.ner import missing as ner_missing

DETECTORS = ("pii", "secrets", "prompt_injection")
ACTIONS = ("off", "monitor", "redact", "block")
FAIL_MODES = ("closed", "open")
KEYS = ("phone_region", "patterns", *DETECTORS, "projects", "ner")
#: The keys a project may set, per detector.
PROJECT_KEYS = {"pii": ("action", "fail_mode", "restore", "output"),
                "secrets": ("action", "fail_mode", "restore", "output"),
                "prompt_injection": ("action", "fail_mode", "threshold", "indirect_threshold")}
_STRENGTH = {a: i for i, a in enumerate(ACTIONS)}
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
    #: ``pii`` and ``secrets``: scan the model's answers too (text and tool-call arguments, streams held back).
    output: bool = True
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
    #: Presidio's analyzer for names and places (part of ``pii``); None: not configured (the default).
    ner: NerSettings | None = None

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
            ner=_ner(sec),
        )


def actions_of(detector: str) -> tuple[str, ...]:
    """The actions a detector takes, weakest first (prompt injection has no redact)."""
    return ("off", "monitor", "block") if detector == "prompt_injection" else ACTIONS


def _detector(parent: Section, name: str) -> DetectorSettings:
    sec = parent.section(name)
    injection = name == "prompt_injection"
    sec.only(*(("action", "fail_mode", "threshold", "indirect_threshold", "classifier") if injection
               else ("action", "fail_mode", "restore", "output")))
    # YAML 1.1 reads a bare ``off`` as false: that is the action a user means.
    action = "off" if sec.raw("action") is False else sec.choice("action", "off", actions_of(name))
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
                            output=not injection and sec.boolean("output", True), classifier=classifier)


def _ner(parent: Section) -> NerSettings | None:
    if parent.raw("ner") is None:
        return None
    sec = parent.section("ner")
    sec.only("model", "entities", "score_threshold", "language")
    model = sec.string("model", env=False)
    if not model:
        raise sec.error("needs model: a spaCy pipeline's package name (en_core_web_lg) or directory", "model")
    entities = sec.raw("entities", list(DEFAULT_ENTITIES))
    if (not isinstance(entities, list) or not entities
            or not all(isinstance(e, str) and e in NER_ENTITIES for e in entities)):
        raise sec.error(f"expected a list of {', '.join(sorted(NER_ENTITIES))}", "entities")
    threshold = sec.number("score_threshold", 0.5, positive=True)
    if threshold > 1.0:
        raise sec.error(f"a score threshold is in (0, 1], got {threshold:g}", "score_threshold")
    found = NerSettings(model, tuple(entities), threshold, sec.string("language", "en", env=False) or "en")
    reason = ner_missing(found)
    if reason is not None:
        raise sec.error(reason, "model")
    return found


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


# ----------------------------------------------------------------- per project

#: Raised by a parser for a bad value: (path inside the project's setting, e.g. ("pii", "action"), message).
Fail = Callable[[tuple[str, ...], str], Exception]
#: governance.model's project id (this layer cannot import it).
_PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class DetectorOverride:
    """A project's setting of one detector; None leaves the floor's value."""

    action: str | None = None
    fail_mode: str | None = None
    threshold: float | None = None
    indirect_threshold: float | None = None
    restore: bool | None = None
    output: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k in _FIELDS if (v := getattr(self, k)) is not None}


_FIELDS = ("action", "fail_mode", "threshold", "indirect_threshold", "restore", "output")
_NONE = DetectorOverride()


@dataclass(frozen=True, slots=True)
class ProjectGuardrails:
    """What a project sets on top of the floor (frozen and hashable: it rides on the ``Principal``)."""

    pii: DetectorOverride = _NONE
    secrets: DetectorOverride = _NONE
    prompt_injection: DetectorOverride = _NONE
    #: Computed once: the guard stage looks a guard up by this value on every request of the project.
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.pii, self.secrets, self.prompt_injection)))

    def __hash__(self) -> int:
        return self._hash

    def detector(self, name: str) -> DetectorOverride:
        found: DetectorOverride = getattr(self, name)
        return found

    @property
    def empty(self) -> bool:
        return all(self.detector(name) == _NONE for name in DETECTORS)

    def to_json(self) -> dict[str, Any]:
        return {name: d for name in DETECTORS if (d := self.detector(name).to_json())}


def parse_project(raw: object, fail: Fail) -> ProjectGuardrails:
    """A project's setting from JSON or YAML data (``{pii: {action, fail_mode, restore}, ...}``); the same
    rules for the admin API and the config file, only the way an error names its place differs."""
    if raw is None:
        return ProjectGuardrails()
    if not isinstance(raw, dict):
        raise fail((), f"expected an object of detectors ({', '.join(DETECTORS)}), got {_kind(raw)}")
    found: dict[str, DetectorOverride] = {}
    for name, value in raw.items():
        if name not in DETECTORS:
            hint = " (patterns and phone_region are global)" if name in ("patterns", "phone_region") else ""
            raise fail((str(name),), f"unknown detector{hint}; expected one of: {', '.join(DETECTORS)}")
        if value is None:
            continue
        keys = PROJECT_KEYS[name]
        if not isinstance(value, dict):
            raise fail((name,), f"expected an object with {', '.join(keys)}, got {_kind(value)}")
        for key in value:
            if key not in keys:
                raise fail((name, str(key)), f"unknown key; expected one of: {', '.join(keys)}")
        found[name] = DetectorOverride(
            _one_of(value, name, "action", actions_of(name), fail), _one_of(value, name, "fail_mode", FAIL_MODES, fail),
            _score(value, name, "threshold", fail), _score(value, name, "indirect_threshold", fail),
            _bool(value, name, "restore", fail), _bool(value, name, "output", fail))
    return ProjectGuardrails(**found)


def _one_of(value: Mapping[str, Any], name: str, key: str, choices: tuple[str, ...], fail: Fail) -> str | None:
    got = value.get(key)
    if got is False and "off" in choices:
        return "off"  # a bare YAML ``off``
    if got is not None and got not in choices:
        raise fail((name, key), f"expected one of {', '.join(choices)}, got {got!r}")
    return got if isinstance(got, str) else None


def _score(value: Mapping[str, Any], name: str, key: str, fail: Fail) -> float | None:
    got = value.get(key)
    if got is None:
        return None
    if isinstance(got, bool) or not isinstance(got, int | float) or not math.isfinite(got) or not 0 < got <= 1:
        raise fail((name, key), f"a score threshold is a number in (0, 1], got {got!r}")
    return float(got)


def _bool(value: Mapping[str, Any], name: str, key: str, fail: Fail) -> bool | None:
    got = value.get(key)
    if got is not None and not isinstance(got, bool):
        raise fail((name, key), f"expected true or false, got {got!r}")
    return got


def _kind(value: object) -> str:
    return "a list" if isinstance(value, list) else f"{type(value).__name__} {value!r}"


def stronger(a: str, b: str) -> str:
    """The tighter of two actions: off < monitor < redact < block."""
    return a if _STRENGTH[a] >= _STRENGTH[b] else b


def _pick(a: Any, b: Any, tighter: Callable[[Any, Any], Any]) -> Any:
    return b if a is None else a if b is None else tighter(a, b)


def _closed(a: str, b: str) -> str:
    return "closed" if "closed" in (a, b) else "open"


def tighten(a: ProjectGuardrails, b: ProjectGuardrails) -> ProjectGuardrails:
    """Two settings of one project (its YAML entry ``a`` and its admin API setting ``b``) as one: the tighter
    value of each field; ``restore`` from ``b`` when it sets it (the most specific wins)."""
    out: dict[str, DetectorOverride] = {}
    for name in DETECTORS:
        x, y = a.detector(name), b.detector(name)
        out[name] = DetectorOverride(_pick(x.action, y.action, stronger), _pick(x.fail_mode, y.fail_mode, _closed),
                                     _pick(x.threshold, y.threshold, min),
                                     _pick(x.indirect_threshold, y.indirect_threshold, min),
                                     x.restore if y.restore is None else y.restore,
                                     _pick(x.output, y.output, lambda p, q: p or q))
    return ProjectGuardrails(**out)


def _apply(floor: DetectorSettings, o: DetectorOverride) -> DetectorSettings:
    action = floor.action if o.action is None else stronger(floor.action, o.action)
    restore = floor.restore if o.restore is None else o.restore
    return DetectorSettings(
        action, floor.fail_mode if o.fail_mode is None else _closed(floor.fail_mode, o.fail_mode),
        floor.threshold if o.threshold is None else min(floor.threshold, o.threshold),
        floor.indirect_threshold if o.indirect_threshold is None else min(floor.indirect_threshold,
                                                                           o.indirect_threshold),
        restore and action == "redact", floor.output or bool(o.output), floor.classifier)


def effective(floor: GuardrailSettings, override: ProjectGuardrails | None) -> GuardrailSettings:
    """What applies to a project: per detector and field the tighter of floor and project, so a floor raised
    above a project's setting wins. ``restore`` holds only while the resulting action is ``redact``."""
    if override is None:
        return floor
    return replace(floor, pii=_apply(floor.pii, override.pii), secrets=_apply(floor.secrets, override.secrets),
                   prompt_injection=_apply(floor.prompt_injection, override.prompt_injection))


def looser(floor: GuardrailSettings, override: ProjectGuardrails) -> tuple[tuple[str, str], str] | None:
    """The first field of ``override`` that is looser than ``floor`` (or a ``restore`` that cannot apply),
    as (path, message); None when the setting only tightens."""
    for name in DETECTORS:
        f, o = floor.detector(name), override.detector(name)
        if o.action is not None and stronger(o.action, f.action) != o.action:
            return (name, "action"), (f"{o.action!r} is looser than the operator's floor {f.action!r}: a project "
                                      f"may only tighten it (off < monitor < {'redact < ' * (name != 'prompt_injection')}block)")
        if o.fail_mode == "open" and f.fail_mode == "closed":
            return (name, "fail_mode"), "'open' is looser than the operator's floor 'closed'"
        if o.output is False and f.output:
            return (name, "output"), "false is looser than the operator's floor true: answers are scanned"
        for key in ("threshold", "indirect_threshold"):
            mine, theirs = getattr(o, key), getattr(f, key)
            if mine is not None and mine > theirs:
                return (name, key), (f"{mine:g} is looser than the operator's floor {theirs:g}: a higher "
                                     "threshold flags less")
        if o.restore:
            action = _apply(f, o).action
            if action != "redact":
                return (name, "restore"), (f"restore puts redacted values back: it needs action: redact, and "
                                           f"{name}'s action here is {action}")
    return None


def settable(settings: GuardrailSettings) -> dict[str, dict[str, Any]]:
    """The fields a project can set, as they are in ``settings`` (the admin API shows what applies)."""
    return {name: {key: getattr(settings.detector(name), key) for key in PROJECT_KEYS[name]} for name in DETECTORS}


def check_project(floor: GuardrailSettings, override: ProjectGuardrails, fail: Fail) -> None:
    """Refuse a project setting looser than ``floor``: raises ``fail(path, message)``."""
    problem = looser(floor, override)
    if problem is not None:
        raise fail(*problem)


@dataclass(slots=True)
class GuardrailConfig:
    """The ``guardrails:`` section: the operator's floor and the per-project entries of ``projects:``.

    One instance is shared by whoever needs it (authentication, admin API, console); a config reload
    changes it in place (:meth:`update`), so every holder sees the new section at once."""

    floor: GuardrailSettings = GuardrailSettings()
    projects: Mapping[str, ProjectGuardrails] = field(default_factory=dict)

    def update(self, new: GuardrailConfig) -> None:
        """Take ``new``'s floor and project entries (a config reload; no await between the two)."""
        self.floor = new.floor
        self.projects = new.projects

    def floor_for(self, project: str) -> GuardrailSettings:
        """What a project's admin API setting may not loosen: the floor with the project's YAML entry."""
        return effective(self.floor, self.projects.get(project))

    def override_for(self, project: str, stored: ProjectGuardrails | None) -> ProjectGuardrails | None:
        """The project's YAML entry and its stored setting as one override (None: the floor alone)."""
        entry = self.projects.get(project)
        both = entry if stored is None else stored if entry is None else tighten(entry, stored)
        return None if both is None or both.empty else both

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardrailConfig:
        sec = settings.section("guardrails")
        floor = GuardrailSettings.from_section(sec)
        raw = sec.raw("projects")
        if raw is None:
            return cls(floor)
        if not isinstance(raw, dict):
            raise sec.error("expected a mapping of project id to its detectors ({pii: {action: block}})",
                            "projects")
        projects: dict[str, ProjectGuardrails] = {}
        for pid, entry in raw.items():
            base = (*sec.path, "projects", pid)

            def fail(path: tuple[str, ...], message: str, base: tuple[str | int, ...] = base) -> Exception:
                return Section(sec.doc, (*base, *path[:-1]), {}, sec.environ).error(
                    message, path[-1] if path else None)

            if not _PROJECT_ID.match(pid):
                raise fail((), "a project id is 1-64 characters of a-z, 0-9, '_', '.', '-'")
            override = parse_project(entry, fail)
            check_project(floor, override, fail)
            projects[pid] = override
        return cls(floor, projects)


__all__ = ["ACTIONS", "DETECTORS", "ConfigError", "DetectorOverride", "DetectorSettings", "GuardrailConfig",
           "GuardrailSettings", "ProjectGuardrails", "effective", "looser", "parse_project", "tighten"]
