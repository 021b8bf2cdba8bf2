"""``GET /embed/{lab}/{model}.svg``: an embeddable badge with a model's price and live latency.

A shields.io-like two-part badge: the model's lab on the left; on the right the
model's name, its reference route's input price per 1M tokens, the live p50
time to first token when this gateway has measured one, and "via interlock".
Text widths come from a fixed per-character table (Verdana 11px), so no font is
loaded; ``textLength`` pins each text to its computed width whatever font the
viewer substitutes. Every text value is XML-escaped: names come from config too.

Public, like the catalog it shows; ``console.public_catalog: false`` puts
badges behind a key together with the catalog pages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable
from urllib.parse import unquote

from interlock.catalog import Catalog
from interlock.catalog.render import Stats, usd_per_million
from interlock.core.errors import ModelNotFound
from interlock.core.exchange import Exchange
from interlock.core.model import Model
from interlock.pipeline.stages import Authenticate
from interlock.routing.stats import LiveStats

_PREFIX = "/embed/"
_SUFFIX = ".svg"

#: Advance widths of Verdana at 11px, in pixels (what shields.io measures with); others fall back below.
_WIDTHS: dict[str, float] = {
    " ": 3.9, "!": 4.3, '"': 5.0, "#": 9.0, "$": 7.0, "%": 11.8, "&": 8.0, "'": 2.9, "(": 4.9, ")": 4.9,
    "*": 7.0, "+": 9.0, ",": 4.0, "-": 5.0, ".": 4.0, "/": 4.9, ":": 4.7, ";": 4.7, "<": 9.0, "=": 9.0,
    ">": 9.0, "?": 6.0, "@": 11.0, "[": 4.9, "\\": 4.9, "]": 4.9, "^": 9.0, "_": 7.0, "`": 7.0, "{": 7.0,
    "|": 4.9, "}": 7.0, "~": 9.0, "·": 4.0, "…": 11.0,
    "a": 6.6, "b": 6.8, "c": 5.7, "d": 6.8, "e": 6.6, "f": 3.9, "g": 6.8, "h": 7.0, "i": 3.0, "j": 3.8,
    "k": 6.5, "l": 3.0, "m": 10.7, "n": 7.0, "o": 6.7, "p": 6.8, "q": 6.8, "r": 4.7, "s": 5.7, "t": 4.3,
    "u": 7.0, "v": 6.5, "w": 9.0, "x": 6.5, "y": 6.5, "z": 5.8,
    "A": 7.5, "B": 7.5, "C": 7.7, "D": 8.5, "E": 7.0, "F": 6.3, "G": 8.5, "H": 8.3, "I": 4.6, "J": 5.0,
    "K": 7.6, "L": 6.1, "M": 9.3, "N": 8.2, "O": 8.6, "P": 6.6, "Q": 8.6, "R": 7.6, "S": 7.5, "T": 6.8,
    "U": 8.1, "V": 7.5, "W": 10.9, "X": 7.5, "Y": 6.8, "Z": 7.5,
    **dict.fromkeys("0123456789", 7.0),
}
_DEFAULT_WIDTH = 7.0  # other Latin text
_WIDE_WIDTH = 11.0  # CJK and other wide scripts
_PADDING = 10  # pixels either side of a text
_MAX_NAME = 60  # characters of a model name before it is cut with an ellipsis

#: Characters XML 1.0 does not allow in a document (control characters, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text_width(text: str) -> float:
    """The rendered width of ``text`` in pixels, from the fixed table."""
    return sum(_WIDTHS.get(c, _WIDE_WIDTH if ord(c) >= 0x2E80 else _DEFAULT_WIDTH) for c in text)


def xml_text(text: str) -> str:
    """``text`` safe inside an element or a quoted attribute: characters XML forbids dropped, the rest escaped."""
    text = _NOT_XML.sub("", text)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def p50_ttft_ms(model: Model, live_vendors: Collection[str], stats: Stats) -> float | None:
    """The live p50 TTFT of the model here: its reference route's, else the first other route's measured one
    (then a live vendor outside the catalog's routes, such as the simulator); None when nothing is measured."""
    ref = model.reference_route
    routes = sorted(model.routes, key=lambda r: r is not ref)
    keys = [key for r in routes for key in ((r.vendor, r.vendor_model_id), (r.vendor, model.id))]
    keys += [(vendor, model.id) for vendor in sorted(live_vendors) if vendor not in model.vendors]
    for key in keys:
        figures = stats.get(key)
        if figures is not None and figures.get("latency_ms") is not None:
            return float(figures["latency_ms"])
    return None


def badge_parts(model: Model, ttft_ms: float | None) -> tuple[str, str]:
    """The left and right texts of the badge (not escaped)."""
    name = model.name if len(model.name) <= _MAX_NAME else model.name[: _MAX_NAME - 1] + "…"
    parts = [name]
    ref = model.reference_route
    if ref is not None and ref.price.input is not None:
        parts.append(f"${usd_per_million(ref.price.input)}/M in")
    if ttft_ms is not None:
        parts.append(f"p50 TTFT {round(ttft_ms)} ms")
    parts.append("via interlock")
    return model.lab or "interlock", " · ".join(parts)


def badge_svg(left: str, right: str) -> bytes:
    """A two-part flat badge as an SVG 1.1 document."""
    lw = round(text_width(left)) + 2 * _PADDING
    rw = round(text_width(right)) + 2 * _PADDING
    width = lw + rw
    label = xml_text(f"{left}: {right}")
    lt, rt = xml_text(left), xml_text(right)
    ltl, rtl = lw - 2 * _PADDING, rw - 2 * _PADDING
    lx, rx = lw / 2, lw + rw / 2
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="20" '
        f'viewBox="0 0 {width} 20" role="img" aria-label="{label}">'
        f"<title>{label}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{rw}" height="20" fill="#007ec6"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'font-size="11" aria-hidden="true">'
        f'<text x="{lx:g}" y="15" fill="#010101" fill-opacity=".3" textLength="{ltl}">{lt}</text>'
        f'<text x="{lx:g}" y="14" textLength="{ltl}">{lt}</text>'
        f'<text x="{rx:g}" y="15" fill="#010101" fill-opacity=".3" textLength="{rtl}">{rt}</text>'
        f'<text x="{rx:g}" y="14" textLength="{rtl}">{rt}</text>'
        "</g></svg>"
    )
    return svg.encode()


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


class BadgeApi:
    """``GET``/``HEAD /embed/{lab}/{model}.svg``; public unless ``auth`` is given (``console.public_catalog: false``)."""

    def __init__(self, catalog: Catalog, live: Iterable[str], stats: LiveStats,
                 auth: Authenticate | None = None) -> None:
        self.catalog = catalog
        self.stats = stats
        self.auth = auth
        self._live = frozenset(live)

    async def svg(self, req: Exchange) -> None:
        if self.auth is not None:  # a private catalog: its badges need a key like its pages
            self.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        # A model id is lab/model, possibly with more slashes or percent-encoded (openai%2Fgpt-4.1-mini.svg).
        rest = unquote(req.path[len(_PREFIX):]).strip("/")
        model_id = rest[: -len(_SUFFIX)] if rest.endswith(_SUFFIX) else ""
        model = self.catalog.get(model_id) if model_id else None
        if model is None:
            raise ModelNotFound(
                f"The model '{model_id or rest}' does not exist in the catalog; a badge is "
                "/embed/{lab}/{model}.svg", param="model")
        body = badge_svg(*badge_parts(model, p50_ttft_ms(model, self._live, self.stats.endpoint_stats())))
        etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
        headers = [
            ("cache-control", "public, max-age=60"),  # the live figures change
            ("etag", etag),
            # Opened directly, the SVG is a document: it may run no script and load nothing.
            ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'"),
            ("x-content-type-options", "nosniff"),
        ]
        if _etag_matches(req.header("if-none-match"), etag):
            req.send(304, b"", headers)
            return
        # HEAD: the server sends the head (with this body's length) and drops the body.
        req.send(200, body, [("content-type", "image/svg+xml; charset=utf-8"), *headers])
