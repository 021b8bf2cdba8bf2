"""The caller's address: the peer's, or behind ``server.trusted_proxies`` the one the proxy forwarded in
``X-Forwarded-For`` (read from the right, so a client cannot name itself); recorded on each log record
(never under zero data retention) and used by the console's sign-in throttle."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import openai
import orjson
import pytest

from interlock.config import ConfigError, load_settings
from interlock.ledger.rowcodec import DETAIL_FIELDS
from interlock.server.http import forwarded_client
from interlock.vendors.registry import VENDOR_TABLE
from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.test_governance_gateway import call

NETS = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1"))


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),           # not a trusted peer: the header is ignored
    ("10.0.0.2", None, "10.0.0.2"),                           # a trusted peer that forwarded nothing
    ("10.0.0.2", "198.51.100.1", "198.51.100.1"),             # one proxy
    ("10.0.0.2", "198.51.100.1, 10.1.2.3", "198.51.100.1"),   # two trusted hops
    ("10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),    # a client naming someone else is not believed
    ("10.0.0.2", "10.9.9.9", "10.9.9.9"),                     # only trusted hops: the farthest
    ("10.0.0.2", "198.51.100.1, junk", "10.0.0.2"),           # garbage after the client: the last good hop
    ("::1", "2001:db8::7", "2001:db8::7"),
])
def test_the_forwarded_client_is_read_from_the_right(peer: str, header: str | None, client: str) -> None:
    assert forwarded_client(peer, header, NETS) == client


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text("server:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8]\n")
    assert [str(n) for n in load_settings(path, vendor_table=VENDOR_TABLE).server.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8"]
    for bad in ("[10.0.0.300]", "10.0.0.1", "[{a: 1}]"):
        path.write_text(f"server:\n  trusted_proxies: {bad}\n")
        with pytest.raises(ConfigError, match="trusted_proxies") as info:
            load_settings(path, vendor_table=VENDOR_TABLE)
        assert "interlock.yaml:2" in str(info.value)


def _client_of_last_record(gw: GatewayProcess, headers: dict[str, str]) -> object:
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    rid = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4.1-mini", max_tokens=5, extra_headers=headers,
        messages=[{"role": "user", "content": "hi"}]).headers["x-interlock-request-id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, _, record = call(gw, "GET", f"/admin/v1/logs/{rid}")
        if status == 200:
            return record["client_ip"]
        time.sleep(0.1)
    raise AssertionError(f"no log record for {rid}")


@pytest.mark.parametrize("trusted", [True, False])
def test_the_log_records_the_client_behind_a_trusted_proxy(tmp_path: Path, trusted: bool) -> None:
    config = "simulator: {enabled: true, time_scale: 0}\nlogging: {flush_interval: 0.1}\n"
    if trusted:
        config += "server: {trusted_proxies: [127.0.0.1]}\n"
    gw = start_gateway(tmp_path, config)
    try:
        forwarded = {"x-forwarded-for": "203.0.113.50"}
        assert _client_of_last_record(gw, forwarded) == ("203.0.113.50" if trusted else "127.0.0.1")
        assert _client_of_last_record(gw, {}) == "127.0.0.1"
    finally:
        gw.stop()


def test_zero_data_retention_keeps_no_client_address(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, "simulator: {enabled: true, time_scale: 0}\nlogging: {flush_interval: 0.1}\n")
    try:
        assert call(gw, "POST", "/admin/v1/projects", {"id": "private", "zero_data_retention": True})[0] == 201
        time.sleep(0.6)
        assert _client_of_last_record(gw, {"x-interlock-project": "private"}) is None
    finally:
        gw.stop()


def test_details_written_before_the_client_field_still_read() -> None:
    from interlock.ledger.rowcodec import row_from_record, row_record

    row = row_from_record({"id": "r1", "received_at": 1.0, "status": 200, "input_tokens": 1, "output_tokens": 1,
                           "client_ip": "192.0.2.1"})
    detail = orjson.loads(row[-1])
    assert len(detail) == 1 + len(DETAIL_FIELDS) and detail[-1] == "192.0.2.1"
    assert row_record(row)["client_ip"] == "192.0.2.1"
    assert row_record((*row[:-1], orjson.dumps(detail[:-1]).decode()))["client_ip"] is None
