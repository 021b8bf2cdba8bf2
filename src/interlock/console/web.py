"""The console's web plumbing: the Jinja2 environment, HTML answers and the static files.

Every page goes out through :func:`send_page` with the same security headers: a
Content-Security-Policy that lets a page load only from this host (no inline script,
no other origin), ``nosniff``, no framing. Templates live in ``console/templates/``
with autoescaping on, so every value a page renders is escaped. Static files
(``console/static/``) are read once at start and served from memory with their
content type, an ETag and cache headers; templates link them with a content hash
(``/static/console.css?v=…``) so a new build is fetched at once. The same code serves
the built docs site under ``/docs/`` (:mod:`interlock.console.docs`), a tree read the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from interlock.core.exchange import Exchange

HTML = "text/html; charset=utf-8"

#: Nothing from other hosts; no inline script or style; no plugins; not framed by other sites.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
)

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
    # The docs site (MkDocs' output) besides the types above.
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml",
    ".gz": "application/gzip",
    ".map": "application/json",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".webmanifest": "application/manifest+json",
}

STATIC_PREFIX = "/static/"


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def _static_file(name: str, body: bytes) -> StaticFile | None:
    """``body`` as a static file, or None when its suffix is not a type served."""
    suffix = name[name.rfind("."):] if "." in name else ""
    content_type = _TYPES.get(suffix)
    return None if content_type is None else StaticFile(body, content_type, hashlib.sha256(body).hexdigest()[:16])


def load_static() -> dict[str, StaticFile]:
    """Every file of ``console/static/`` (flat), with its type and a content-hash ETag."""
    files: dict[str, StaticFile] = {}
    for entry in resources.files("interlock.console").joinpath("static").iterdir():
        found = _static_file(entry.name, entry.read_bytes()) if entry.is_file() else None
        if found is not None:
            files[entry.name] = found
    return files


def load_tree(root: Path) -> dict[str, StaticFile]:
    """Every file under ``root`` by its relative path (``a/b.html``), and each folder with an ``index.html``
    by its own path with a trailing slash (``a/``; the root as ``""``).

    Only what is read here can be served: a request is a lookup in this dict, never a path opened on disk,
    so ``..``, encoded dots or NUL in a URL cannot reach another file. Symbolic links are not followed.
    """
    files: dict[str, StaticFile] = {}
    for folder, dirs, names in os.walk(root, followlinks=False):
        base = Path(folder)
        rel = base.relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
        for name in sorted(names):
            path = base / name
            if path.is_symlink() or not path.is_file():
                continue
            found = _static_file(name, path.read_bytes())
            if found is None:
                continue
            files[prefix + name] = found
            if name == "index.html":
                files[prefix] = found
    return files


def _not_found_text(req: Exchange) -> None:
    req.send(404, b"not found\n", [("content-type", "text/plain; charset=utf-8"), *SECURITY_HEADERS])


class StaticFiles:
    """``GET {prefix}{name}``: a file read at start (``/static/``: the package's static folder), from memory.

    ``headers`` go with every file; ``missing`` answers a name not found (the console's: a plain-text 404).
    """

    def __init__(self, files: dict[str, StaticFile], prefix: str = STATIC_PREFIX,
                 headers: Sequence[tuple[str, str]] = SECURITY_HEADERS,
                 missing: Callable[[Exchange], None] = _not_found_text) -> None:
        self.files = files
        self.prefix = prefix
        self.headers = tuple(headers)
        self.missing = missing

    async def __call__(self, req: Exchange) -> None:
        name = req.path[len(self.prefix):] if req.path.startswith(self.prefix) else None
        found = self.files.get(name) if name is not None else None
        if found is None:
            self.missing(req)
            return
        etag = f'"{found.etag}"'
        # Linked with ?v=<hash>: such a URL never changes content, so it may be kept for a year.
        versioned = req.query == f"v={found.etag}"
        headers = [
            ("content-type", found.content_type),
            ("cache-control", "public, max-age=31536000, immutable" if versioned else "public, max-age=300"),
            ("etag", etag),
            *self.headers,
        ]
        if req.header("if-none-match") == etag:
            req.send(304, b"", headers)
            return
        req.send(200, found.body, headers)


def make_environment(static: dict[str, StaticFile], docs_url: str | None = None) -> Environment:
    """Jinja2 over ``console/templates/``: autoescaping on for every template, undefined names an error.

    ``docs_url``: where the gateway serves the docs site (the header links it), None when it was not built."""
    env = Environment(
        loader=PackageLoader("interlock.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def static_url(name: str) -> str:
        return f"{STATIC_PREFIX}{name}?v={static[name].etag}"

    env.globals["static_url"] = static_url
    env.globals["docs_url"] = docs_url
    # Who is signed in (the header's sign-in/sign-out part); pages of a signed-in browser pass their own.
    env.globals["viewer"] = None
    env.globals["csrf"] = ""
    return env


def render(env: Environment, template: str, context: dict[str, Any]) -> bytes:
    return env.get_template(template).render(**context).encode()


def send_html(req: Exchange, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
    """Answer with a rendered page and the console's security headers."""
    req.send(status, body, [("content-type", HTML), ("cache-control", "no-store"), *SECURITY_HEADERS, *headers])


def send_page(req: Exchange, env: Environment, status: int, template: str, context: dict[str, Any],
              headers: Sequence[tuple[str, str]] = ()) -> None:
    """Render ``template`` (a small page: on the loop) and answer with it."""
    send_html(req, status, render(env, template, context), headers)


def redirect(req: Exchange, location: str, headers: Sequence[tuple[str, str]] = ()) -> None:
    """``303 See Other`` to a path of this gateway (a form's answer, or the way to the sign-in page)."""
    req.send(303, b"", [("location", location), ("cache-control", "no-store"), *SECURITY_HEADERS, *headers])


async def send_large_page(req: Exchange, env: Environment, status: int, template: str,
                          context: dict[str, Any]) -> None:
    """Render ``template`` in a worker thread (the index is ~500 kB of HTML) so the loop keeps serving."""
    send_html(req, status, await asyncio.to_thread(render, env, template, context))
