"""A tool pack's tools: what its upstream servers list, filtered by the allowlist, renamed and namespaced.

Names: a tool keeps its upstream name, or the pack's ``rename``; when two servers of one pack would expose the
same name, each of them becomes ``<server>__<tool>`` (only those: the others keep theirs), so a name depends
on the pack's definition and the upstreams' listings, never on the order answers arrive in. A server that
cannot list is not dropped silently: its error is returned with the listing (the MCP result's ``_meta``,
the log and ``/metrics``), and a listing where every server failed is an error.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from mcp import types

from interlock.mcp.model import NAMESPACE_SEP, PackSpec


@dataclass(frozen=True, slots=True)
class PackTool:
    """One tool as the pack exposes it, and where it comes from."""

    name: str
    server: str
    upstream_name: str
    tool: types.Tool
    #: False: its server could not list now; the tool is known from an earlier listing (kept so that names stay
    #: the same, and so a call to it says why it cannot run instead of "no such tool").
    available: bool = True


@dataclass(slots=True)
class PackListing:
    tools: list[PackTool] = field(default_factory=list)
    #: server → why it could not list.
    errors: dict[str, str] = field(default_factory=dict)
    #: server → the credential problem that kept it from listing (``access.CredentialProblem``).
    problems: dict[str, Exception] = field(default_factory=dict)

    def by_name(self) -> dict[str, PackTool]:
        return {t.name: t for t in self.tools}

    def available(self) -> list[PackTool]:
        return [t for t in self.tools if t.available]


Lister = Callable[[str], Awaitable[list[types.Tool]]]


class ListingFailed(Exception):
    """A server could not list; ``cause``: the credential problem behind it, when that was the reason."""

    def __init__(self, server: str, message: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.server = server
        self.message = message
        self.cause = cause


def select(pack: PackSpec, listed: Mapping[str, list[types.Tool]],
           known: Mapping[str, list[types.Tool]] | None = None) -> list[PackTool]:
    """The pack's tools from each server's listing (pure: the allowlist, renames, descriptions, namespacing).

    ``known``: earlier listings of servers that could not list now; their tools are included as unavailable,
    so the names of the others do not change while a server is down."""
    chosen: list[tuple[str, str, types.Tool, bool]] = []
    for server in pack.servers():
        available = server in listed
        for tool in listed[server] if available else (known or {}).get(server, ()):
            if pack.allows(server, tool.name):
                chosen.append((server, tool.name, tool, available))
    names = [pack.rename.get(f"{s}/{n}", n) for s, n, _, _ in chosen]
    counts = Counter(names)
    out: list[PackTool] = []
    for (server, upstream, tool, available), name in zip(chosen, names, strict=True):
        if counts[name] > 1:
            name = f"{server}{NAMESPACE_SEP}{upstream}"
        update: dict[str, object] = {"name": name}
        description = pack.describe.get(f"{server}/{upstream}")
        if description is not None:
            update["description"] = description
        out.append(PackTool(name, server, upstream, tool.model_copy(update=update), available))
    return out


async def list_pack(pack: PackSpec, lister: Lister,
                    known: Mapping[str, list[types.Tool]] | None = None) -> PackListing:
    """Every server of the pack listed concurrently; ``lister`` raises :class:`ListingFailed` for a server."""
    servers = pack.servers()
    results = await asyncio.gather(*(lister(s) for s in servers), return_exceptions=True)
    listed: dict[str, list[types.Tool]] = {}
    listing = PackListing()
    for server, result in zip(servers, results, strict=True):
        if isinstance(result, ListingFailed):
            listing.errors[server] = result.message
            if result.cause is not None:
                listing.problems[server] = result.cause
        elif isinstance(result, BaseException):
            raise result
        else:
            listed[server] = result
    listing.tools = select(pack, listed, known)
    return listing
