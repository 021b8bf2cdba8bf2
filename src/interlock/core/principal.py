"""Who a request is from: the caller as authentication resolved it."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from interlock.core.regions import RegionRule


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "admin" or "project"
    key_prefix: str
    #: The project the request is attributed to (the key's, or the one ``x-interlock-project`` names).
    project: str | None = None
    #: The project key's id (``key_...``); None for the admin key.
    key_id: str | None = None
    #: The models the key may call (empty: whatever its project allows).
    allowed_models: tuple[str, ...] = ()
    #: The project asks for zero data retention (``Project.zero_data_retention``).
    zero_data_retention: bool = False
    #: The project's guardrail settings on top of the operator's floor (a frozen
    #: ``guardrails.settings.ProjectGuardrails``, opaque here); None: the floor alone.
    guardrails: Hashable | None = None
    #: Data residency: the project's and the key's region rules (each must admit a route); () for none.
    regions: tuple[RegionRule, ...] = ()

    @property
    def admin(self) -> bool:
        return self.kind == "admin"
