"""Stored Responses API responses as the request path sees them: the record, its owner, the store's interface.

The stores themselves (SQLite, PostgreSQL) live in :mod:`interlock.ledger.responses_store`;
the Responses codec reads and saves through :class:`ResponseStore` only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from interlock.core.canonical import Message
from interlock.core.principal import Principal


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose responses a caller may read or delete: one project's, or (the admin key) every one."""

    project: str | None
    admin: bool = False

    @classmethod
    def of(cls, principal: Principal | None) -> Owner:
        """The owner a principal reads and deletes as (no principal: nobody's)."""
        if principal is None:
            return cls(None)
        return cls(principal.project, principal.admin)

    @property
    def sees_nothing(self) -> bool:
        """A non-admin caller without a project owns no response."""
        return not self.admin and self.project is None


#: The admin key's view: every response.
ADMIN = Owner(None, admin=True)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    model: str
    owner: str | None
    previous_response_id: str | None
    #: The response object exactly as it was returned.
    response: dict[str, Any]
    #: This request's input items (normalised to a list).
    input_items: list[Any]
    #: The canonical messages a follow-up continues from (previous turns, this input, this output; no instructions).
    conversation: list[Message]
    created_at: float = 0.0
    #: The project of the request that stored it (None: the admin key without a project; admin-only).
    project: str | None = None

    def row(self) -> tuple[Any, ...]:
        return (self.id, self.created_at or time.time(), self.model, self.owner, self.project,
                self.previous_response_id, orjson.dumps(self.response), orjson.dumps(self.input_items),
                orjson.dumps(self.conversation))


class ResponseStore(Protocol):
    """What the Responses codec needs of the store: read one (scoped to an owner), save one soon."""

    async def get(self, response_id: str, owner: Owner) -> StoredResponse | None: ...

    def save_soon(self, item: StoredResponse) -> None: ...
