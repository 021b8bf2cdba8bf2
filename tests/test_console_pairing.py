"""The model page's "Worth pairing with" and "Facts a buyer asks": derived from catalog data, deterministic."""

from __future__ import annotations

from types import MappingProxyType

from interlock.catalog import Catalog, load_catalog
from interlock.console.pairing import blended, facts, pairings, same_tier
from interlock.core.model import Model, Route
from interlock.core.pricing import Price

CATALOG = load_catalog()
CAPS = frozenset({"tools", "vision", "structured_outputs", "streaming"})


def model(mid: str, lab: str, price_in: int, price_out: int, *, caps: frozenset[str] = CAPS, context: int = 128_000,
          released: str = "2025-06-01", vendors: tuple[str, ...] = ("v1",), zdr: bool | None = None,
          bench: dict[str, float] | None = None) -> Model:
    routes = tuple(Route(v, mid.split("/")[1], Price(input=price_in + 10_000 * i, output=price_out + 10_000 * i),
                         context_window=context, capabilities=caps, zdr=zdr if i == 0 else None)
                   for i, v in enumerate(vendors))
    return Model(id=mid, lab=lab, name=mid.split("/")[1].upper(), release_date=released, context_window=context,
                 max_output=context // 4, input_modalities=("text", "image"), capabilities=caps,
                 benchmarks=MappingProxyType(bench or {}), routes=routes, reference_route=routes[0])


def toy_catalog() -> Catalog:
    return Catalog([
        model("acme/big", "acme", 2_000_000, 8_000_000, bench={"X": 80.0}, vendors=("v1", "v2"), zdr=True),
        model("acme/small", "acme", 500_000, 2_000_000, bench={"X": 75.0}),        # same tier, 75% cheaper
        model("acme/tiny", "acme", 100_000, 400_000, bench={"X": 40.0}),           # too weak: not the tier
        model("acme/old", "acme", 100_000, 400_000, released="2023-01-01"),         # too old
        model("acme/short", "acme", 100_000, 400_000, context=32_000),              # too little context
        model("acme/thinker", "acme", 3_000_000, 12_000_000, caps=CAPS | {"reasoning"}),
        model("zeta/peer", "zeta", 2_100_000, 8_000_000, vendors=("v3",)),          # closest price, not live
        model("omega/live", "omega", 1_000_000, 5_000_000, vendors=("v4",)),        # live here
    ])


def test_pairings_name_a_cheaper_same_tier_model_a_reasoning_one_and_a_live_cross_lab_one() -> None:
    catalog = toy_catalog()
    big = catalog.get("acme/big")
    assert big is not None
    picks = pairings(catalog, big, {"v1", "v4"})
    assert [(p["kind"], p["id"]) for p in picks] == [
        ("Cheaper, same tier", "acme/small"), ("Reasoning", "acme/thinker"), ("Cross-lab failover", "omega/live")]
    assert picks[0]["reason"].startswith("75% cheaper at a 3:1 input:output mix ($0.50 in / $2.00 out per 1M vs "
                                         "$2.00 in / $8.00 out per 1M)")
    assert "94% of its shared benchmark scores" in picks[0]["reason"]
    assert "live here via v4" in picks[2]["reason"]
    # With no vendor of either live, the closest in price wins the failover slot, and says where it is served.
    assert pairings(catalog, big, set())[2]["id"] == "zeta/peer"
    assert "not configured here (served by v3)" in pairings(catalog, big, set())[2]["reason"]
    assert pairings(catalog, big, {"v1", "v4"}) == picks  # deterministic
    thinker = catalog.get("acme/thinker")
    assert thinker is not None and "Reasoning" not in [p["kind"] for p in pairings(catalog, thinker, set())]


def test_tier_rules() -> None:
    catalog = toy_catalog()
    big = catalog.get("acme/big")
    assert big is not None
    tier = {m.id for m in catalog.models if same_tier(m, big)}
    assert tier == {"acme/small", "acme/thinker", "zeta/peer", "omega/live"}
    assert blended(big.reference_route) == (3 * 2_000_000 + 8_000_000) / 4


def test_facts_follow_the_data_of_each_model() -> None:
    mini, sonnet = CATALOG.get("openai/gpt-4.1-mini"), CATALOG.get("anthropic/claude-sonnet-4-5")
    assert mini is not None and sonnet is not None
    a = dict(facts(CATALOG, mini, {"openai"}))
    b = dict(facts(CATALOG, sonnet, {"openai"}))
    assert a["Who serves GPT-4.1 mini here?"] == "OpenAI (1 of the 3 vendors that list it)."
    assert b[f"Who serves {sonnet.name} here?"].startswith("None here: it is listed by Anthropic, Azure")
    assert a["What does it cost?"] == ("$0.40 per 1M input tokens and $1.60 per 1M output tokens, "
                                       "across 3 priced routes.")
    assert b["What does it cost?"].startswith("$3.00 per 1M input tokens and $15.00 per 1M output tokens")
    assert a["How much context does it take?"] == "1,047,576 tokens (1.05M)."
    assert b["How much context does it take?"] == "200,000 tokens (200K)."
    assert a["Is it live on this gateway?"] == "Yes, through OpenAI." and b["Is it live on this gateway?"] == "No."
    assert "reasoning" in b["What can it read and write?"] and "reasoning" not in a["What can it read and write?"]
    assert a != b


def test_facts_cheapest_vendor_and_zdr() -> None:
    catalog = toy_catalog()
    big = catalog.get("acme/big")
    assert big is not None
    answers = dict(facts(catalog, big, {"v2"}))
    assert answers["Which vendor is cheapest?"] == "v1: $2.00 in / $8.00 out per 1M."
    assert answers["What does it cost?"] == ("$2.00 to $2.01 per 1M input tokens and $8.00 to $8.01 per 1M output "
                                             "tokens, across 2 priced routes.")
    assert answers["Is zero data retention available?"] == "Yes, from v1."
    assert answers["Is it live on this gateway?"] == "Yes, through v2."
    small = catalog.get("acme/small")
    assert small is not None
    assert dict(facts(catalog, small, set()))["Is zero data retention available?"] == (
        "Unknown: none of its vendors (v1) states it in the catalog.")
