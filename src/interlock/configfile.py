"""Reading ``interlock.yaml`` so that every error names the key and the line.

PyYAML's composer keeps a start mark on every node; we build plain Python
values from the node tree ourselves and remember where each key path came
from. :class:`Section` then reads typed values out of a mapping and raises a
:class:`ConfigError` that says ``interlock.yaml:12: vendors.openai.timeouts.connect:
expected a positive number, got 'abc'`` instead of a traceback.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
#: An HTTP header name (RFC 9110 5.1: a token), and what may never be in a header value sent on the wire.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")


def is_header_name(name: str) -> bool:
    return _TOKEN.fullmatch(name) is not None


def unsafe_header_value(value: str) -> bool:
    """A CR, LF or NUL: written into a request head it would end the header and inject others."""
    return _UNSAFE_VALUE.search(value) is not None


class ConfigError(ValueError):
    """An invalid configuration, with the file position of the offending key."""


class MissingEnv(ValueError):
    """A ``${VAR}`` reference to an environment variable that is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}``; raise :class:`MissingEnv` for unset variables."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or value == "":
            if default is not None:
                return default
            raise MissingEnv(name)
        return value

    return _ENV_REF.sub(sub, text)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


class Document:
    """Plain data from a YAML file plus the line of every key path."""

    def __init__(self, data: Any, lines: dict[Path_, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    @classmethod
    def parse(cls, text: str, source: str) -> Document:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{where}: not valid YAML: {problem}") from None
        lines: dict[Path_, int] = {}
        if node is None:
            return cls({}, lines, source)
        loader = yaml.SafeLoader("")
        data = cls._build(node, (), lines, loader, source)
        return cls(data, lines, source)

    @classmethod
    def load(cls, path: Path) -> Document:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
        return cls.parse(text, str(path))

    @classmethod
    def _build(cls, node: yaml.Node, path: Path_, lines: dict[Path_, int], loader: yaml.SafeLoader, source: str) -> Any:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node)
                if not isinstance(key, str):
                    raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: {_dotted(path)}: keys must be strings, got {key!r}")
                if key in out:
                    raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: {_dotted((*path, key))}: duplicate key")
                out[key] = cls._build(value_node, (*path, key), lines, loader, source)
                lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [cls._build(item, (*path, i), lines, loader, source) for i, item in enumerate(node.value)]
        return loader.construct_object(node)

    def where(self, path: Path_) -> str:
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        return f"{self.source}:{line}" if line is not None else self.source


class Section:
    """A mapping inside a :class:`Document`, read with types checked and unknown keys refused."""

    def __init__(self, doc: Document, path: Path_, value: Any, environ: Mapping[str, str]) -> None:
        self.doc = doc
        self.path = path
        self.environ = environ
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping, got {_kind(value)}")
        self.value: dict[str, Any] = value

    def error(self, message: str, key: str | int | None = None) -> ConfigError:
        path = self.path if key is None else (*self.path, key)
        return ConfigError(f"{self.doc.where(path)}: {_dotted(path)}: {message}")

    def only(self, *allowed: str) -> None:
        for key in self.value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(allowed)})"
                raise self.error(f"unknown key{hint}", key)

    def names(self) -> Iterator[str]:
        return iter(self.value)

    def has(self, key: str) -> bool:
        return key in self.value

    def section(self, key: str) -> Section:
        return Section(self.doc, (*self.path, key), self.value.get(key), self.environ)

    def raw(self, key: str, default: Any = None) -> Any:
        return self.value.get(key, default)

    def string(self, key: str, default: str | None = None, *, env: bool = True) -> str | None:
        value = self.value.get(key)
        if value is None:
            return default
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.error(f"expected a string, got {_kind(value)}", key)
        text = str(value)
        if env:
            try:
                text = expand_env(text, self.environ)
            except MissingEnv as exc:
                raise self.error(f"environment variable {exc.name} is not set", key) from None
        return text

    def secret(self, key: str) -> tuple[str | None, str | None]:
        """A credential: ``(value, env var name it came from)``; value None when the variable is unset."""
        value = self.value.get(key)
        if value is None:
            return None, None
        if not isinstance(value, str):
            raise self.error(f"expected a string such as '${{MY_VENDOR_KEY}}', got {_kind(value)}", key)
        match = _ENV_REF.fullmatch(value.strip())
        if match:
            name = match.group(1)
            return (self.environ.get(name) or match.group(2) or None), name
        try:
            return expand_env(value, self.environ), None
        except MissingEnv as exc:
            return None, exc.name

    def number(self, key: str, default: float, *, minimum: float | None = None, positive: bool = False) -> float:
        value = self.value.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = float(expand_env(value, self.environ))
            except (ValueError, MissingEnv):
                raise self.error(f"expected a number, got {value!r}", key) from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"expected a number, got {_kind(value)}", key)
        if not math.isfinite(value):
            raise self.error(f"expected a finite number, got {value!r}", key)
        if positive and value <= 0:
            raise self.error(f"expected a positive number, got {value!r}", key)
        if minimum is not None and value < minimum:
            raise self.error(f"expected a number ≥ {minimum:g}, got {value!r}", key)
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int | None = None) -> int:
        value = self.value.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = int(expand_env(value, self.environ))
            except (ValueError, MissingEnv):
                raise self.error(f"expected an integer, got {value!r}", key) from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected an integer, got {_kind(value)}", key)
        if minimum is not None and value < minimum:
            raise self.error(f"expected an integer ≥ {minimum}, got {value!r}", key)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {value!r}", key)
        return value

    def string_map(self, key: str) -> dict[str, str]:
        sub = self.section(key)
        out: dict[str, str] = {}
        for name in sub.names():
            text = sub.string(name)
            if text is None:
                raise sub.error("expected a string, got nothing", name)
            out[name] = text
        return out

    def header_map(self, key: str) -> dict[str, str]:
        """HTTP headers to send: names must be tokens, values free of CR, LF and NUL (after ``${VAR}``)."""
        out = self.string_map(key)
        sub = self.section(key)
        for name, value in out.items():
            if not is_header_name(name):
                raise sub.error("not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)", name)
            if unsafe_header_value(value):
                raise sub.error("the header value contains CR, LF or NUL, which would inject a header "
                                "(check the value or the environment variable it names)", name)
        return out

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        assert value is not None
        if value not in choices:
            raise self.error(f"expected one of {', '.join(choices)}, got {value!r}", key)
        return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"
