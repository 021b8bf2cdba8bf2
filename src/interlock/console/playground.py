"""The playground: ``GET /console/playground`` and the endpoints its script calls.

``POST /console/api/chat`` takes an OpenAI chat request from the signed-in browser
and runs it as an ordinary gateway request: the same codec, stages (route, admit,
capture), dispatcher, settlers and request log as ``/v1/chat/completions``. Only
*who* differs: :class:`SessionIdentify` takes the caller from the verified session
instead of the Authorization header, so the session key's allowed models, rate
limits and budgets apply and the spend lands in its project.
``GET /console/api/generation?id=`` is ``/v1/generation`` for the session's caller
(another project's request id reads as unknown).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment

from interlock.catalog import Catalog
from interlock.console.csrf import HEADER, cross_site, same
from interlock.console.sessions import Session, Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.web import redirect, send_page
from interlock.core.context import RequestContext
from interlock.core.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.pipeline.stages import Identify

PAGE = "/console/playground"
SIMULATOR = "simulator"
#: The caller of the console request being handled (set by :meth:`Playground.chat` around the pipeline).
_CALLER: ContextVar[Principal | None] = ContextVar("console_caller", default=None)

Generation = Callable[[Principal, str], Awaitable[dict[str, Any]]]


class SessionIdentify:
    """Who is calling, for console requests: the caller comes from the session, ZDR as ``identify`` decides
    for any request (a wrapper, not a subclass: ``Identify`` may be compiled, ``make fast``)."""

    __slots__ = ("_identify",)

    def __init__(self, identify: Identify) -> None:
        self._identify = identify

    def __call__(self, req: Exchange, ctx: RequestContext) -> None:
        principal = _CALLER.get()
        if principal is None:
            raise AuthenticationFailed("Sign in to the console first (no session).", code="no_session")
        self._identify.attribute(ctx, principal)


def model_choices(catalog: Catalog, live_vendors: Collection[str]) -> list[str]:
    """Model names a signed-in user can pick: catalog models a live vendor serves, then ``simulator/...``."""
    served = [m.id for m in catalog.models if any(v in live_vendors for v in m.vendors)]
    simulated = [f"{SIMULATOR}/{m.id}" for m in catalog.models] if SIMULATOR in live_vendors else []
    return sorted(served) + sorted(simulated)


def _defaults(choices: list[str]) -> list[str]:
    preferred = [f"{SIMULATOR}/openai/gpt-4.1-mini", f"{SIMULATOR}/anthropic/claude-sonnet-4-5"]
    picked = [m for m in preferred if m in choices]
    for m in choices:
        if len(picked) >= 2:
            break
        if m not in picked:
            picked.append(m)
    return picked + [""] * (4 - len(picked))


class Playground:
    """The page and its JSON endpoints; every one needs a session."""

    def __init__(self, env: Environment, sessions: Sessions, pipeline: Callable[[Exchange], Awaitable[None]],
                 generation: Generation, catalog: Catalog, live_vendors: Collection[str]) -> None:
        self.env = env
        self.sessions = sessions
        self.pipeline = pipeline
        self.generation_for = generation
        self.choices = model_choices(catalog, live_vendors)
        self.defaults = _defaults(self.choices)

    async def page(self, req: Exchange) -> None:
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE))
            return
        send_page(req, self.env, 200, "playground.html",
                  {"title": "Playground", "active": "playground", "choices": self.choices,
                   "defaults": self.defaults, **viewer(session)})

    async def _session(self, req: Exchange, *, changes: bool) -> Session:
        session = await self.sessions.resolve(req)
        if session is None:
            raise AuthenticationFailed("Sign in to the console first: no valid session cookie.", code="no_session")
        if changes:
            if (why := cross_site(req)) is not None:
                raise PermissionDenied(f"Cross-site request refused: {why}.", code="csrf_cross_site")
            if not same(session.csrf, req.header(HEADER)):
                raise PermissionDenied("The X-CSRF-Token header is missing or invalid for this session.",
                                       param="X-CSRF-Token", code="csrf_token_invalid")
        return session

    async def chat(self, req: Exchange) -> None:
        session = await self._session(req, changes=True)
        token = _CALLER.set(session.principal)
        try:
            await self.pipeline(req)
        finally:
            _CALLER.reset(token)

    async def generation(self, req: Exchange) -> None:
        session = await self._session(req, changes=False)
        rid = dict(parse_qsl(req.query)).get("id", "").strip()
        if not rid:
            raise InvalidRequest("Missing required query parameter: 'id' (the request id).", param="id",
                                 code="missing_required_parameter")
        req.json(200, {"data": await self.generation_for(session.principal, rid)})
