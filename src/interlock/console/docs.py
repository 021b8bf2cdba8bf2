"""The built docs site (``make docs``: MkDocs' output in ``site/``) served at ``/docs/``, without sign-in.

The folder is ``INTERLOCK_DOCS_DIR`` when set, else ``site/`` of the source checkout this package runs from
(an editable install); with neither built, ``/docs`` is not routed and the console links no docs. The files
are read once at start by the console's static-file code (:func:`interlock.console.web.load_tree`): a request
is a lookup among them, so no URL reaches a file outside the site.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from interlock.console.web import StaticFiles, load_tree
from interlock.core.errors import NotFound
from interlock.core.exchange import Exchange

DOCS_PREFIX = "/docs/"

#: MkDocs Material's pages carry inline scripts and styles (its palette and search configuration), which the
#: console's policy forbids; still nothing from other hosts, no plugins and no framing by other sites.
DOCS_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy",
     "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
     "img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
)


def docs_dir(environ: Mapping[str, str]) -> Path | None:
    """The built site's folder, or None when there is none (its ``index.html`` is missing)."""
    configured = environ.get("INTERLOCK_DOCS_DIR")
    if configured:
        root = Path(configured)
    else:
        checkout = Path(__file__).resolve().parents[3]  # src/interlock/console/docs.py → the checkout
        if not (checkout / "mkdocs.yml").is_file():
            return None
        root = checkout / "site"
    return root if (root / "index.html").is_file() else None


def _not_found(req: Exchange) -> None:
    raise NotFound(f"No docs page at {req.path}. The docs start at {DOCS_PREFIX}.")


class DocsSite:
    """``GET /docs`` (redirected to ``/docs/``) and ``GET /docs/{path}``: the site's files, folders by their
    ``index.html``; anything else a 404 in the gateway's JSON error format."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.static = StaticFiles(load_tree(root), DOCS_PREFIX, DOCS_HEADERS, _not_found)

    @property
    def pages(self) -> int:
        return len(self.static.files)

    async def __call__(self, req: Exchange) -> None:
        if req.path == DOCS_PREFIX[:-1]:
            req.send(301, b"", [("location", DOCS_PREFIX), ("content-type", "text/plain; charset=utf-8")])
            return
        await self.static(req)
