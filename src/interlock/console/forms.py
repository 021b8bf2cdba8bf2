"""Console forms that change state: the checks every such POST passes, and the confirmation step.

A state-changing request must come from this site (``csrf.cross_site``), from a signed-in browser, as an
``application/x-www-form-urlencoded`` body carrying the session's CSRF token (``csrf_token``); otherwise it is
answered with an error page (403 / 415) or sent to sign in, and nothing changes. Destructive actions are two
steps: ``GET`` shows :func:`confirm` (what will happen, a button that POSTs with the token, a way back) and
only the ``POST`` acts. Field errors go back to the form as ``{field: message}`` beside the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from jinja2 import Environment

from interlock.console.csrf import FIELD, cross_site, same
from interlock.console.sessions import Session, Sessions
from interlock.console.signin import read_form, signin_url, viewer
from interlock.console.web import redirect, send_page
from interlock.core.exchange import Exchange


@dataclass(frozen=True, slots=True)
class Posted:
    session: Session
    form: dict[str, str]


def refuse(req: Exchange, env: Environment, status: int, title: str, message: str,
           session: Session | None = None) -> None:
    send_page(req, env, status, "error.html", {"title": title, "message": message, "active": "",
                                               **viewer(session)})


async def posted(req: Exchange, env: Environment, sessions: Sessions, back: str) -> Posted | None:
    """The signed-in, same-site, CSRF-checked form of a POST; None when the request was answered instead."""
    if (why := cross_site(req)) is not None:
        refuse(req, env, 403, "Cross-site request refused", f"This change was refused: {why}.")
        return None
    session = await sessions.resolve(req)
    if session is None:
        redirect(req, signin_url(back))
        return None
    form = await read_form(req)
    if form is None:
        refuse(req, env, 415, "Unsupported form encoding",
               "Send the form as application/x-www-form-urlencoded.", session)
        return None
    if not same(session.csrf, form.get(FIELD)):
        refuse(req, env, 403, "Missing CSRF token",
               f"This change needs the form's CSRF token ('{FIELD}'); it is missing or does not match this "
               "session. Reload the page and try again.", session)
        return None
    return Posted(session, form)


async def not_found(req: Exchange, env: Environment, sessions: Sessions, active: str, back: str) -> None:
    """A path under a console page that names nothing: sign in first, then a 404 page."""
    session = await sessions.resolve(req)
    if session is None:
        redirect(req, signin_url(back))
        return
    send_page(req, env, 404, "error.html", {"title": "Not found", "active": active,
                                            "message": f"No page {req.path[:100]}.", **viewer(session)})


def admin_only(req: Exchange, env: Environment, session: Session, what: str) -> bool:
    """True when the session may change ``what`` (the admin key); otherwise answers 403 and returns False."""
    if session.principal.admin:
        return True
    refuse(req, env, 403, "Admin key needed", f"{what} are changed with the admin key; this session is a "
           f"project key of {session.principal.project!r}, which may look but not change.", session)
    return False


async def admin_step(req: Exchange, env: Environment, sessions: Sessions, *, back: str, here: str,
                     what: str) -> tuple[Session, dict[str, str] | None] | None:
    """Who acts in one step of a two-step admin action (a GET shows the form or confirmation, the POST acts):
    the admin session, with the checked form for a POST (None for a GET); None when answered instead."""
    form = None
    if req.method == "POST":
        got = await posted(req, env, sessions, back)
        if got is None:
            return None
        session, form = got.session, got.form
    else:
        found = await sessions.resolve(req)
        if found is None:
            redirect(req, signin_url(here))
            return None
        session = found
    if not admin_only(req, env, session, what):
        return None
    return session, form


def confirm(req: Exchange, env: Environment, session: Session, *, title: str, message: str, action: str,
            button: str, back: str, fields: Mapping[str, str] | None = None,
            inputs: Sequence[Mapping[str, str]] = (), errors: Mapping[str, str] | None = None,
            status: int = 200, active: str = "", danger: bool = True) -> None:
    """The confirmation page of a destructive action (or, ``danger=False``, a small edit form): ``button``
    POSTs ``fields`` and ``inputs`` (each ``name``, ``label``, ``value``, optional ``hint``, and ``choices``,
    comma-separated, for a select) to ``action``."""
    send_page(req, env, status, "confirm.html", {
        "title": title, "message": message, "action": action, "button": button, "back": back, "danger": danger,
        "fields": dict(fields or {}), "inputs": list(inputs), "errors": dict(errors or {}), "active": active,
        **viewer(session)})


def field_list(text: str) -> list[str]:
    """A comma- or newline-separated list from a text field, blanks dropped."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def done_note(query: str) -> str:
    """The note after a change (``?done=kind:id``), as text."""
    for part in query.split("&"):
        if part.startswith("done="):
            kind, _, item = unquote(part[5:]).partition(":")
            text = {"project-created": "Project {} created.", "key-revoked": "Key {} revoked.",
                    "budget-created": "Budget {} created.", "budget-deleted": "Budget {} deleted.",
                    "limit-created": "Limit {} created.", "limit-deleted": "Limit {} deleted.",
                    "budget-updated": "Budget {} changed.", "project-updated": "Project {} changed.", "limit-updated": "Limit {} changed."}.get(kind)
            return text.format(item[:80]) if text else ""
    return ""
