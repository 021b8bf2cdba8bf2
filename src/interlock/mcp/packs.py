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


@dataclass(slots=True)
class PackListing:
    tools: list[PackTool] = field(default_factory=list)
    #: server → why it could not list.
    errors: dict[str, str] = field(default_factory=dict)

    def by_name(self) -> dict[str, PackTool]:
        return {t.name: t for t in self.tools}


Lister = Callable[[str], Awaitable[list[types.Tool]]]


class ListingFailed(Exception):
    def __init__(self, server: str, message: str) -> None:
        super().__init__(message)
        self.server = server
        self.message = message


def select(pack: PackSpec, listed: Mapping[str, list[types.Tool]]) -> list[PackTool]:
    """The pack's tools from each server's listing (pure: the allowlist, renames, descriptions, namespacing)."""
    chosen: list[tuple[str, str, types.Tool]] = []
    for server in pack.servers():
        for tool in listed.get(server, ()):
            if pack.allows(server, tool.name):
                chosen.append((server, tool.name, tool))
    names = [pack.rename.get(f"{s}/{n}", n) for s, n, _ in chosen]
    counts = Counter(names)
    out: list[PackTool] = []
    for (server, upstream, tool), name in zip(chosen, names, strict=True):
        if counts[name] > 1:
            name = f"{server}{NAMESPACE_SEP}{upstream}"
        update: dict[str, object] = {"name": name}
        description = pack.describe.get(f"{server}/{upstream}")
        if description is not None:
            update["description"] = description
        out.append(PackTool(name, server, upstream, tool.model_copy(update=update)))
    return out


async def list_pack(pack: PackSpec, lister: Lister) -> PackListing:
    """Every server of the pack listed concurrently; ``lister`` raises :class:`ListingFailed` for a server."""
    servers = pack.servers()
    results = await asyncio.gather(*(lister(s) for s in servers), return_exceptions=True)
    listed: dict[str, list[types.Tool]] = {}
    listing = PackListing()
    for server, result in zip(servers, results, strict=True):
        if isinstance(result, ListingFailed):
            listing.errors[server] = result.message
        elif isinstance(result, BaseException):
            raise result
        else:
            listed[server] = result
    listing.tools = select(pack, listed)
    return listing
