"""Catalog views: OpenAI-compatible model list, detail, endpoints and CLI text."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from interlock.catalog import load_catalog
from interlock.catalog.render import (
    created_unix,
    model_detail,
    model_endpoints,
    model_list,
    model_page,
    models_table,
    openai_model_entry,
    pricing_per_token,
    supported_parameters,
    usd_per_million,
)
from interlock.core.errors import InvalidRequest, ModelNotFound

LIVE = frozenset({"openai", "anthropic"})


def test_list_parses_with_openai_sdk_types() -> None:
    from openai.pagination import SyncPage
    from openai.types import Model as OpenAIModel

    payload = model_list(load_catalog(), LIVE, {})
    page = SyncPage[OpenAIModel].model_validate(payload)
    assert len(page.data) == len(load_catalog().models)
    first = page.data[0]
    assert first.object == "model" and isinstance(first.created, int) and first.owned_by


def test_list_through_the_openai_client() -> None:
    """The real SDK call path (client.models.list) against the rendered payload."""
    import openai

    transport_mod: Any = None
    for name in ("httpx2", "httpx"):
        try:
            transport_mod = importlib.import_module(name)
            break
        except ImportError:
            continue
    if transport_mod is None:
        pytest.skip("no httpx flavour installed")
    payload = model_list(load_catalog(), LIVE, {"search": "gpt-4.1"})

    def handler(request: Any) -> Any:
        assert request.url.path == "/v1/models"
        return transport_mod.Response(200, json=payload)

    http_client = transport_mod.Client(transport=transport_mod.MockTransport(handler))
    try:
        client = openai.OpenAI(api_key="test", base_url="http://interlock.test/v1", http_client=http_client)
    except TypeError:
        pytest.skip("this openai SDK does not accept this http client flavour")
    ids = [m.id for m in client.models.list()]
    assert ids == ["openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4.1-nano"]


def test_entry_shape_and_exact_pricing() -> None:
    model = load_catalog().get("openai/gpt-4.1-mini")
    assert model is not None
    entry = openai_model_entry(model, LIVE)
    assert entry["id"] == "openai/gpt-4.1-mini"
    assert entry["object"] == "model"
    assert entry["created"] == created_unix("2025-04-14") == 1_744_588_800
    assert entry["owned_by"] == "openai"
    assert entry["context_length"] == 1_047_576
    assert entry["architecture"] == {
        "input_modalities": ["text", "image", "pdf"],
        "output_modalities": ["text"],
        "modality": "text+image+pdf->text",
    }
    assert entry["pricing"] == {
        "prompt": "0.0000004",
        "completion": "0.0000016",
        "input_cache_read": "0.0000001",
    }
    assert entry["top_provider"] == {
        "context_length": 1_047_576,
        "max_completion_tokens": 32_768,
        "is_moderated": False,
    }
    assert {
        "tools",
        "tool_choice",
        "response_format",
        "structured_outputs",
        "temperature",
        "top_p",
        "seed",
        "max_tokens",
        "stop",
    } <= set(entry["supported_parameters"])
    assert "reasoning" not in entry["supported_parameters"]
    assert entry["live_vendors"] == ["openai"] and entry["endpoints_live"] == 1
    assert "endpoint_stats" not in entry


def test_pricing_helpers() -> None:
    sonnet = load_catalog().get("anthropic/claude-sonnet-4-5")
    assert sonnet is not None and sonnet.reference_route is not None
    assert pricing_per_token(sonnet.reference_route.price) == {
        "prompt": "0.000003",
        "completion": "0.000015",
        "input_cache_read": "0.0000003",
        "input_cache_write": "0.00000375",
    }
    assert "seed" not in supported_parameters(sonnet.capabilities, "anthropic")
    assert "reasoning" in supported_parameters(sonnet.capabilities, "anthropic")
    assert usd_per_million(400_000) == "0.40"
    assert usd_per_million(2_800) == "0.0028"
    assert usd_per_million(6_875_000) == "6.875"
    assert usd_per_million(None) == "-"
    assert created_unix(None) == 0 and created_unix("2025-04") == created_unix("2025-04-01")
    assert created_unix("garbage") == 0


def test_list_filters() -> None:
    catalog = load_catalog()

    def ids(query: dict[str, Any]) -> set[str]:
        return {m["id"] for m in model_list(catalog, LIVE, query)["data"]}

    groq = ids({"vendor": "groq"})
    assert groq and all(catalog.get(i).route("groq") for i in groq)  # type: ignore[union-attr]
    both = ids({"capability": "tools,vision"})
    assert both == ids({"capability": ["tools", "vision"]})
    assert all({"tools", "vision"} <= catalog.get(i).capabilities for i in both)  # type: ignore[union-attr]
    assert both < ids({"capability": "tools"})
    audio_in = ids({"input_modality": "audio"})
    assert audio_in and all("audio" in catalog.get(i).input_modalities for i in audio_in)  # type: ignore[union-attr]
    assert ids({"output_modality": "image"})
    assert ids({"search": "GPT-4.1-MINI"}) == {"openai/gpt-4.1-mini"}
    live = ids({"live": "true"})
    assert live and all(set(catalog.get(i).vendors) & LIVE for i in live)  # type: ignore[union-attr]
    assert ids({"limit": "5"}) == ids({})  # unknown parameters are ignored, as OpenAI does


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"vendor": "nope"}, "vendor"),
        ({"capability": "tools,telepathy"}, "capability"),
        ({"input_modality": "smell"}, "input_modality"),
        ({"output_modality": "smell"}, "output_modality"),
        ({"live": "maybe"}, "live"),
    ],
)
def test_list_rejects_unknown_filter_values(query: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        model_list(load_catalog(), LIVE, query)
    assert info.value.param == param
    assert info.value.status == 400


def test_detail_and_endpoints() -> None:
    catalog = load_catalog()
    stats = {
        ("anthropic", "claude-opus-4-6"): {
            "latency_ms": 420.0,
            "throughput_tps": 61.5,
            "uptime": 0.999,
            "p99_ms": 1900.0,
        }
    }
    detail = model_detail(catalog, "anthropic/claude-opus-4-6", LIVE, stats)
    assert detail["id"] == "anthropic/claude-opus-4-6"
    assert detail["benchmarks"]["SWE-Bench Pro"] == 51.9
    assert detail["reference_vendor"] == "anthropic"
    endpoints = model_endpoints(catalog, "anthropic/claude-opus-4-6", LIVE, stats)["data"]
    assert endpoints["id"] == "anthropic/claude-opus-4-6"
    assert endpoints["architecture"]["modality"] == "text+image+pdf->text"
    by_id = {(e["vendor"], e["vendor_model_id"]): e for e in endpoints["endpoints"]}
    own = by_id["anthropic", "claude-opus-4-6"]
    assert own["vendor"] == "anthropic" and own["provider_name"] == "Anthropic"
    assert own["live"] is True and own["reference"] is True
    assert own["latency_ms"] == 420.0 and own["throughput_tps"] == 61.5 and own["uptime"] == 0.999
    assert own["stats"] == {"p99_ms": 1900.0}
    assert own["pricing"]["prompt"] == "0.000005"
    assert own["zdr"] is None
    vertex = by_id["vertex", "claude-opus-4-6@default"]
    assert vertex["live"] is False and vertex["latency_ms"] is None and vertex["throughput_tps"] is None
    assert vertex["pricing_tiers"] == [
        {
            "above_prompt_tokens": 200_000,
            "prompt": "0.00001",
            "completion": "0.0000375",
            "input_cache_read": "0.000001",
            "input_cache_write": "0.0000125",
        }
    ]
    assert detail["endpoints"] == endpoints["endpoints"]
    assert all(
        e["latency_ms"] is None for e in model_endpoints(catalog, "openai/gpt-4.1", LIVE)["data"]["endpoints"]
    )


def test_unknown_model_raises_model_not_found() -> None:
    for fn in (model_detail, model_endpoints):
        with pytest.raises(ModelNotFound) as info:
            fn(load_catalog(), "acme/nothing", LIVE)
        assert info.value.status == 404
    with pytest.raises(ModelNotFound):
        model_page(load_catalog(), "acme/nothing", LIVE)


def test_models_table_is_aligned() -> None:
    text = models_table(load_catalog(), LIVE, search="gpt-4.1")
    lines = text.splitlines()
    header, rule, *rows = lines[: lines.index("")]
    assert header.split() == ["MODEL", "CONTEXT", "IN", "$/1M", "OUT", "$/1M", "CAPABILITIES", "VENDORS"]
    assert len(rows) == 3
    # every column starts at the same offset on every row
    starts = [i for i, ch in enumerate(rule) if ch == "-" and (i == 0 or rule[i - 1] == " ")]
    for row in rows:
        for s in starts[1:]:
            assert row[s - 1] == " ", (row, s)
    mini = next(r for r in rows if r.startswith("openai/gpt-4.1-mini "))
    assert "1,047,576" in mini and "0.40" in mini and "1.60" in mini and "openai*" in mini
    assert lines[-1].startswith("3 models")
    tools_only = models_table(load_catalog(), LIVE, vendor="groq", capability="tools")
    assert "groq" in tools_only
    with pytest.raises(InvalidRequest):
        models_table(load_catalog(), LIVE, capability="telepathy")


def test_model_page() -> None:
    page = model_page(load_catalog(), "anthropic/claude-opus-4-6", LIVE)
    assert page.startswith("anthropic/claude-opus-4-6\n=")
    assert "Claude Opus 4.6" in page
    assert "Reference     anthropic (claude-opus-4-6)" in page
    assert ">200,000 tok: 10.00/37.50" in page
    row = next(line for line in page.splitlines() if line.startswith("anthropic "))
    assert "5.00" in row and "25.00" in row and "live, reference" in row
    assert "Benchmarks" in page and "SWE-Bench Pro" in page
