"""The catalog: compiler rules, packaged data, lookups and config overrides."""

from __future__ import annotations

import time
from dataclasses import FrozenInstanceError
from importlib import resources
from pathlib import Path

import orjson
import pytest
from tools.catalog_compile import DEFAULT_SNAPSHOT, compile_snapshot, dump_catalog, main

from interlock.catalog import CAPABILITIES, Catalog, load_catalog
from interlock.catalog.catalog import LAB_VENDOR, choose_reference_route, model_from_json, route_sort_key
from interlock.core.model import Route
from interlock.core.pricing import Price

# --------------------------------------------------------------------------- a synthetic snapshot

LAB_MODEL = """
name = "Acme One"
family = "acme"
release_date = "2025-01-02"
knowledge = "2024-06"
attachment = true
reasoning = true
temperature = true
tool_call = true
structured_output = true
open_weights = true

[limit]
context = 200_000
input = 150_000
output = 8_000

[modalities]
input = ["text", "image"]
output = ["text"]

[[benchmarks]]
name = "Bench"
score = 10.0
date = "2025-01-01"

[[benchmarks]]
name = "Bench"
score = 12.5
date = "2025-06-01"
"""


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    root = tmp_path / "models.dev"
    _write(root, "LICENSE", "MIT License\n")
    _write(root, "models/acme/acme-one.toml", LAB_MODEL)
    _write(root, "models/openai/gpt-x.toml", 'name = "GPT X"\n[limit]\ncontext = 1000\noutput = 100\n')
    from tools.catalog_compile import VENDOR_SOURCES

    for providers in VENDOR_SOURCES.values():
        for provider in providers:
            _write(root, f"providers/{provider}/provider.toml", f'name = "{provider.title()}"\n')
            (root / "providers" / provider / "models").mkdir(exist_ok=True)
    # base_model route that omits inherited flags and carries tiered + float-artefact pricing
    _write(
        root,
        "providers/togetherai/models/acme/Acme-One.toml",
        'base_model = "acme/acme-one"\nbase_model_omit = ["tool_call", "limit.input"]\n'
        "[cost]\ninput = 0.049999999999999996\noutput = 0.2\ncached_input = 0.01\n"
        '[[cost.tiers]]\ntier = { type = "context", size = 100_000 }\ninput = 0.1\noutput = 0.4\n',
    )
    # second route of the same model, more expensive, with a fast mode
    _write(
        root,
        "providers/fireworks-ai/models/accounts/fireworks/models/acme-one.toml",
        'base_model = "acme/acme-one"\nstatus = "beta"\n[cost]\ninput = 1\noutput = 2\n'
        "[experimental.modes.fast]\ncost = { input = 3, output = 6 }\n",
    )
    # a lab's own API, no base_model: links by <lab>/<id>
    _write(root, "providers/openai/models/gpt-x.toml", 'name = "GPT X"\n[cost]\ninput = 5\noutput = 10\n')
    # an aggregator's plain id links by unique tail
    _write(root, "providers/azure/models/gpt-x.toml", 'name = "GPT X"\n[cost]\ninput = 4\noutput = 8\n')
    # own models: org/model form, and a plain id
    _write(
        root,
        "providers/openrouter/models/mistralai/new-thing.toml",
        'name = "New"\n[cost]\ninput = 1\noutput = 1\n',
    )
    _write(
        root,
        "providers/openrouter/models/mistralai/new-thing:free.toml",
        'name = "New (free)"\n[cost]\ninput = 0\noutput = 0\n',
    )
    _write(
        root, "providers/groq/models/fast-llama.toml", 'name = "Fast"\n[cost]\ninput = 0.1\noutput = 0.1\n'
    )
    # Bedrock regional profile of a lab model
    _write(
        root,
        "providers/amazon-bedrock/models/eu.acme.acme-one-v1:0.toml",
        'name = "Acme One"\n[cost]\ninput = 1.1\noutput = 2.2\n',
    )
    return root


def test_compile_rules(snapshot: Path) -> None:
    catalog = compile_snapshot(snapshot)
    assert [m.id for m in catalog.models] == [
        "acme/acme-one",
        "groq/fast-llama",
        "mistral/new-thing",
        "openai/gpt-x",
    ]
    acme = catalog.get("acme/acme-one")
    assert acme is not None
    assert acme.name == "Acme One" and acme.lab == "acme" and acme.open_weights
    assert acme.context_window == 200_000 and acme.max_input == 150_000
    assert dict(acme.benchmarks) == {"Bench": 12.5}  # latest result wins
    assert {
        "tools",
        "structured_outputs",
        "vision",
        "reasoning",
        "streaming",
        "prompt_caching",
    } <= acme.capabilities

    together = acme.route("together")
    assert together is not None
    assert together.vendor_model_id == "acme/Acme-One"
    assert together.price.input == 50_000  # float artefact snapped
    assert together.price.cache_read == 10_000  # "cached_input" alias
    assert together.price.tiers[0].above == 100_000 and together.price.tiers[0].input == 100_000
    assert "tools" not in together.capabilities  # base_model_omit dropped tool_call
    assert together.max_input is None  # ...and limit.input
    assert together.context_window == 200_000  # the rest is inherited

    fireworks = acme.route("fireworks")
    assert fireworks is not None and fireworks.status == "beta"
    fast = fireworks.price.mode("fast")
    assert fast is not None and fast.output == 6_000_000

    bedrock = acme.route("bedrock")
    assert bedrock is not None and bedrock.vendor_model_id == "eu.acme.acme-one-v1:0"

    # no lab vendor for "acme": the cheapest priced route is the reference
    assert acme.reference_route is together

    gpt = catalog.get("openai/gpt-x")
    assert gpt is not None and gpt.vendors == ("azure", "openai")
    assert gpt.reference_route is gpt.route("openai")  # lab's own vendor even though azure is cheaper

    new = catalog.get("mistral/new-thing")
    assert new is not None
    assert [r.vendor_model_id for r in new.routes] == ["mistralai/new-thing", "mistralai/new-thing:free"]
    assert new.reference_route is not None and new.reference_route.vendor_model_id == "mistralai/new-thing"

    assert catalog.by_vendor_model("groq", "fast-llama") is not None
    assert catalog.vendors == {"azure", "bedrock", "fireworks", "groq", "openai", "openrouter", "together"}


def test_compile_is_deterministic_and_cli_writes_notice(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "catalog.json"
    assert main([str(snapshot), "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main([str(snapshot), "--out", str(out)]) == 0
    assert out.read_bytes() == first
    assert (out.parent / "LICENSE.models.dev").read_text() == "MIT License\n"
    round_trip = Catalog.from_json(orjson.loads(first))
    assert dump_catalog(round_trip) == first


def test_compile_rejects_dangling_base_model(
    snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(snapshot, "providers/groq/models/ghost.toml", 'base_model = "acme/ghost"\n')
    assert main([str(snapshot), "--out", str(tmp_path / "x.json")]) == 1
    assert "acme/ghost" in capsys.readouterr().err


# --------------------------------------------------------------------------- the packaged catalog


def test_packaged_catalog_matches_snapshot() -> None:
    """data/catalog.json is exactly what the compiler makes of the shared snapshot."""
    if not DEFAULT_SNAPSHOT.is_dir():
        pytest.skip(f"models.dev snapshot not found at {DEFAULT_SNAPSHOT}")
    packaged = resources.files("interlock.catalog").joinpath("data", "catalog.json").read_bytes()
    assert dump_catalog(compile_snapshot(DEFAULT_SNAPSHOT)) == packaged


def test_packaged_license_notice_ships() -> None:
    notice = resources.files("interlock.catalog").joinpath("data", "LICENSE.models.dev").read_text()
    assert "MIT" in notice


def test_every_model_has_routes_and_a_valid_reference() -> None:
    catalog = load_catalog()
    assert len(catalog.models) > 400
    assert [m.id for m in catalog.models] == sorted(m.id for m in catalog.models)
    for model in catalog.models:
        assert model.routes, model.id
        assert model.capabilities <= CAPABILITIES
        ref = model.reference_route
        assert ref is not None and ref in model.routes
        own = LAB_VENDOR.get(model.lab)
        if own is not None and model.route(own) is not None:
            assert ref is model.route(own), model.id
        else:
            assert ref is choose_reference_route(model.lab, model.routes), model.id
            assert route_sort_key(ref) == min(route_sort_key(r) for r in model.routes)
        for route in model.routes:
            assert route.capabilities <= CAPABILITIES
            assert catalog.by_vendor_model(route.vendor, route.vendor_model_id) is not None


def test_vendors_are_the_interlock_ids() -> None:
    assert load_catalog().vendors == {
        "openai",
        "azure",
        "anthropic",
        "google",
        "vertex",
        "bedrock",
        "mistral",
        "groq",
        "deepseek",
        "xai",
        "together",
        "fireworks",
        "cerebras",
        "openrouter",
        "perplexity",
        "cohere",
    }


def test_known_models() -> None:
    catalog = load_catalog()
    mini = catalog.get("openai/gpt-4.1-mini")
    assert mini is not None
    assert mini.context_window == 1_047_576 and mini.max_output == 32_768
    openai_route = mini.route("openai")
    assert openai_route is not None and mini.reference_route is openai_route
    assert openai_route.price == Price(input=400_000, output=1_600_000, cache_read=100_000)
    assert {"azure", "openai", "openrouter"} <= set(mini.vendors)
    assert {"tools", "vision", "structured_outputs", "prompt_caching", "streaming"} <= mini.capabilities

    sonnet = catalog.get("anthropic/claude-sonnet-4-5-20250929")
    assert sonnet is not None and sonnet.reference_route is not None
    assert sonnet.reference_route.vendor == "anthropic"
    assert {"bedrock", "vertex"} <= set(sonnet.vendors)
    bedrock = sonnet.route("bedrock")
    assert bedrock is not None and bedrock.vendor_model_id.startswith(
        "global."
    )  # profile preferred at equal price
    assert len(sonnet.routes_for("bedrock")) > 1  # regional inference profiles

    hit = catalog.by_vendor_model("groq", "llama-3.3-70b-versatile")
    assert hit is not None and hit[1].vendor == "groq"
    hit = catalog.by_vendor_model("vertex", "claude-sonnet-4-5@20250929")
    assert hit is not None and hit[0].id.startswith("anthropic/claude-sonnet-4-5")
    assert catalog.by_vendor_model("openai", "GPT-4.1-MINI") is not None  # case-insensitive fallback
    assert catalog.by_vendor_model("openai", "no-such-model") is None
    embedding = catalog.get("openai/text-embedding-3-small")
    assert embedding is not None and "streaming" not in embedding.capabilities


def test_find_resolves_client_model_names() -> None:
    catalog = load_catalog()
    assert catalog.find("openai/gpt-4.1-mini") is catalog.get("openai/gpt-4.1-mini")
    assert catalog.find("gpt-4.1-mini") is catalog.get("openai/gpt-4.1-mini")
    assert catalog.find("claude-sonnet-4-5-20250929") is catalog.get("anthropic/claude-sonnet-4-5-20250929")
    groq = catalog.find("groq/llama-3.3-70b-versatile")
    assert groq is not None and groq.route("groq") is not None
    assert catalog.find("definitely-not-a-model") is None


def test_models_are_frozen_and_hashable() -> None:
    model = load_catalog().get("openai/gpt-4.1-mini")
    assert model is not None
    with pytest.raises(FrozenInstanceError):
        model.name = "x"  # type: ignore[misc]
    assert {model: 1}[model] == 1
    with pytest.raises(TypeError):
        model.benchmarks["x"] = 1.0  # type: ignore[index]


def test_load_is_fast_and_cached() -> None:
    raw = resources.files("interlock.catalog").joinpath("data", "catalog.json").read_bytes()
    best = min(_timed(lambda: Catalog.from_json(orjson.loads(raw))) for _ in range(3))
    assert best < 0.150, f"catalog load took {best * 1000:.0f} ms"
    assert load_catalog() is load_catalog()


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def test_schema_version_is_checked() -> None:
    with pytest.raises(ValueError, match="schema"):
        Catalog.from_json({"schema": 99, "models": []})


# --------------------------------------------------------------------------- overrides


def test_override_negotiated_price_merges() -> None:
    base = load_catalog()
    cat = base.with_overrides(
        {"models": {"openai/gpt-4.1-mini": {"routes": {"openai": {"price": {"input": 0.3}}}}}}
    )
    route = cat.get("openai/gpt-4.1-mini").route("openai")  # type: ignore[union-attr]
    assert route is not None
    assert (route.price.input, route.price.output, route.price.cache_read) == (300_000, 1_600_000, 100_000)
    assert route.source == "config"
    # the packaged catalog is untouched
    assert base.get("openai/gpt-4.1-mini").route("openai").price.input == 400_000  # type: ignore[union-attr]
    assert base.with_overrides(None) is base


def test_override_adds_private_model_and_route() -> None:
    cat = load_catalog().with_overrides(
        {
            "models": {
                "acme/private-llm": {
                    "name": "Private LLM",
                    "context_window": 32_768,
                    "max_output": 4096,
                    "capabilities": ["streaming", "tools"],
                    "routes": {
                        "vllm": {"vendor_model_id": "private-llm-v2", "price": {"input": 0.5, "output": 1.5}}
                    },
                },
                "openai/gpt-4.1-mini": {
                    "routes": {
                        "azure": {
                            "vendor_model_id": "my-deployment",
                            "price": {"input": 0.35, "output": 1.4},
                            "zdr": True,
                        }
                    },
                },
            },
            "vendors": {"openai": {"zdr": True}},
        }
    )
    private = cat.get("acme/private-llm")
    assert private is not None and private.name == "Private LLM" and private.lab == "acme"
    route = private.route("vllm")
    assert route is not None and route.vendor_model_id == "private-llm-v2" and route.price.input == 500_000
    assert route.context_window == 32_768 and route.capabilities == {"streaming", "tools"}
    assert private.reference_route is route
    assert "vllm" in cat.vendors
    assert cat.by_vendor_model("vllm", "private-llm-v2") is not None

    mini = cat.get("openai/gpt-4.1-mini")
    assert mini is not None
    deployments = {r.vendor_model_id: r for r in mini.routes_for("azure")}
    assert deployments["my-deployment"].zdr is True and deployments["my-deployment"].price.input == 350_000
    assert deployments["gpt-4.1-mini"].price.input == 400_000  # the listed route stays
    assert mini.route("openai").zdr is True  # type: ignore[union-attr]


def test_override_remove_and_pin_reference() -> None:
    cat = load_catalog().with_overrides(
        {
            "models": {
                "openai/gpt-4.1-mini": {
                    "reference_vendor": "azure",
                    "routes": {"openrouter": {"remove": True}},
                }
            }
        }
    )
    mini = cat.get("openai/gpt-4.1-mini")
    assert mini is not None
    assert mini.route("openrouter") is None
    assert mini.reference_route is not None and mini.reference_route.vendor == "azure"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"modles": {}}, "catalog.modles"),
        ({"models": {"openai/gpt-4.1-mini": {"contxt": 1}}}, "contxt"),
        ({"models": {"openai/gpt-4.1-mini": {"routes": {"openai": {"price": {"inptu": 1}}}}}}, "price.inptu"),
        (
            {"models": {"openai/gpt-4.1-mini": {"routes": {"openai": {"price": {"input": -1}}}}}},
            "price.input",
        ),
        ({"models": {"openai/gpt-4.1-mini": {"capabilities": ["telepathy"]}}}, "capabilities"),
        ({"models": {"openai/gpt-4.1-mini": {"context_window": "big"}}}, "context_window"),
        ({"models": {"newmodel": {"routes": {"x": {"price": {"input": 1}}}}}}, "lab/model"),
        ({"models": {"acme/x": {"name": "X"}}}, "at least one route"),
        ({"models": {"acme/x": {"routes": {"vllm": {"vendor_model_id": "x"}}}}}, "routes.vllm.price"),
        ({"models": {"openai/gpt-4.1-mini": {"reference_vendor": "groq"}}}, "reference_vendor"),
        ({"vendors": {"openai": {"zdr": "yes"}}}, "catalog.vendors.openai.zdr"),
        ({"models": []}, "catalog.models"),
    ],
)
def test_override_errors_name_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_catalog().with_overrides(overrides)


def test_route_json_round_trip() -> None:
    route = Route(vendor="v", vendor_model_id="m", price=Price(input=1), zdr=True, status="deprecated")
    assert Route.from_json(route.to_json()) == route
    assert route.deprecated
    model = load_catalog().get("google/gemini-2.5-pro")
    assert model is not None
    assert model_from_json(model.to_json()) == model
