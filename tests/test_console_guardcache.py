"""The Guardrails and Cache pages' pure parts: the bounded window of detections, the clear form's checks."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any, cast

from interlock.console import guardrails as page
from interlock.console.cache import selector_form, selector_text
from interlock.core.principal import Principal
from interlock.ledger.record import strongest_action
from interlock.ledger.schema import LogQuery

NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC).timestamp()


class FakeLog:
    """Newest first, with since / project / cursor / limit as the stores apply them; counts its reads."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, key=lambda r: (r["received_at"], r["id"]), reverse=True)
        self.reads: list[LogQuery] = []

    async def query(self, q: LogQuery) -> list[dict[str, Any]]:
        self.reads.append(q)
        out = [r for r in self.rows if (q.since is None or r["received_at"] >= q.since)
               and (q.project is None or r["project"] == q.project)
               and _guarded(r, q.guardrail)
               and (q.cursor is None or (r["received_at"], r["id"]) < q.cursor)]
        return out[:q.limit]


def _guarded(r: dict[str, Any], wanted: str | None) -> bool:
    """The log's guardrail filter: the strongest action, or "any" detection."""
    action = strongest_action(r["guardrails"])
    return wanted is None or (action != "" if wanted == "any" else action == wanted)


def record(i: int, at: float, project: str, guardrails: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {"id": f"req_{i:06d}", "received_at": at, "project": project, "model": "m", "status": 200,
            "guardrails": guardrails}


def counts(log: FakeLog, principal: Principal) -> page.Counts:
    clock = SimpleNamespace(time=lambda: NOW)
    gp = page.GuardrailsPage(cast(Any, None), cast(Any, None), cast(Any, None), cast(Any, None), cast(Any, log),
                             None, cast(Any, clock))
    return asyncio.run(gp._counts(cast(Any, SimpleNamespace(principal=principal))))


ADMIN = Principal("admin", "ik-a")
TEAM = Principal("project", "ik-t", project="team")


def test_counts_by_day_detector_and_action_and_the_newest_events() -> None:
    pii = {"detector": "pii", "action": "monitor", "score": 1.0, "entities": {"EMAIL_ADDRESS": 2}}
    rows = [record(1, NOW - 10, "team", [pii, {"detector": "secrets", "action": "block", "score": 1.0}]),
            record(2, NOW - 86400 * 2, "other", [pii]),
            record(3, NOW - 20, "team", None),
            record(4, NOW - 30, "team", [{"detector": "prompt_injection", "action": "monitor", "unchecked": True}]),
            record(5, NOW - 86400 * 9, "team", [pii])]  # older than the window
    log = FakeLog(rows)
    c = counts(log, ADMIN)
    assert c.days[-1] == "2026-12-06" and len(c.days) == page.DAYS
    assert c.by_day["2026-12-06"] == {"pii": 1, "secrets": 1, "prompt_injection": 1}
    assert c.by_day["2026-12-04"]["pii"] == 1
    assert c.by_action["pii"]["monitor"] == 2 and c.by_action["secrets"]["block"] == 1
    assert c.by_action["prompt_injection"]["unchecked"] == 1
    assert [e["id"] for e in c.recent] == ["req_000001", "req_000004", "req_000002"]
    assert c.recent[0]["events"][0]["entities"] == ["2 EMAIL_ADDRESS"]
    # The whole window was read, and only the requests with a detection (the log's guardrail index).
    assert c.oldest is None and c.scanned == 3 and all(q.guardrail == "any" for q in log.reads)
    mine = counts(FakeLog(rows), TEAM)
    assert sum(mine.by_action["pii"].values()) == 1 and all(e["project"] == "team" for e in mine.recent)


def test_the_window_is_bounded_whatever_the_log_holds() -> None:
    pii = [{"detector": "pii", "action": "monitor", "score": 1.0}]
    log = FakeLog([record(i, NOW - i, "p", pii) for i in range(page.MAX_ROWS * 3)])
    c = counts(log, ADMIN)
    assert c.scanned == page.MAX_ROWS and len(log.reads) == page.MAX_ROWS // page.PAGE_ROWS
    assert all(q.limit == page.PAGE_ROWS for q in log.reads)
    assert c.oldest == NOW - (page.MAX_ROWS - 1)  # the page says from when on it counted
    assert len(c.recent) == page.RECENT
    chart = c.chart()
    assert chart[-1]["total"] == page.MAX_ROWS and chart[-1]["width"] == 100.0 and chart[0]["width"] == 0.0


def test_clear_form_needs_a_field_and_printable_values() -> None:
    form, errors = selector_form({})
    assert "namespace" in errors
    form, errors = selector_form({"model": " openai/gpt-4.1-mini ", "project": "a\x00b"})
    assert form["model"] == "openai/gpt-4.1-mini" and errors == {"project": "Only printable characters."}
    form, errors = selector_form({"namespace": "x" * 201})
    assert "namespace" in errors
    form, errors = selector_form({"project": "team", "model": "m"})
    assert errors == {} and selector_text(form) == "project=team model=m"
