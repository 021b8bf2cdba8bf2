"""The optional Presidio adapter (guardrails/ner.py) with the real Presidio analyzer and spaCy.

No trained spaCy model can be fetched here, so the pipeline is a blank English one with an entity
ruler, saved to a directory: the adapter loads it the way it loads ``en_core_web_lg``. That checks
the glue (loading, entity types, offsets, thresholds, merging with the rules), not NER quality.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from interlock.guardrails.findings import Finding
from interlock.guardrails.ner import NerSettings, PresidioNer, merge, missing
from tests.conftest import MASTER_KEY, start_gateway
from tests.inprocess import running_gateway
from tests.mock_openai import MockVendor
from tests.test_guardrails_gateway import _chat_in_process

TEXT = "Please write to Dana Whitfield in Springfield about card 4111 1111 1111 1111."


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([  # type: ignore[attr-defined]
        {"label": "PERSON", "pattern": [{"LOWER": "dana"}, {"LOWER": "whitfield"}]},
        {"label": "GPE", "pattern": "Springfield"},
        {"label": "ORG", "pattern": "Acme"}])
    path = tmp_path_factory.mktemp("spacy") / "pipeline"
    nlp.to_disk(path)
    yield path


def test_names_and_places_are_found_with_offsets(pipeline: Path) -> None:
    ner = PresidioNer(NerSettings(str(pipeline)))
    found = ner.scan(TEXT + " Acme pays.")
    assert [(f.type, TEXT[f.start:f.end]) for f in found] == [("PERSON", "Dana Whitfield"),
                                                               ("LOCATION", "Springfield")]
    assert all(0.0 < f.score <= 1.0 for f in found)


def test_only_the_listed_entities_and_scores_above_the_threshold(pipeline: Path) -> None:
    assert [f.type for f in PresidioNer(NerSettings(str(pipeline), entities=("PERSON",))).scan(TEXT)] == ["PERSON"]
    assert PresidioNer(NerSettings(str(pipeline), score_threshold=0.99)).scan(TEXT) == []


def test_a_rule_finding_wins_where_they_overlap() -> None:
    card = Finding("CREDIT_CARD", 10, 29, 1.0)
    assert merge([card], [Finding("PERSON", 12, 20, 0.85), Finding("PERSON", 40, 44, 0.85)]) == [
        card, Finding("PERSON", 40, 44, 0.85)]
    assert merge([card], []) == [card]


def test_what_is_missing_is_said_before_loading(pipeline: Path, tmp_path: Path) -> None:
    assert missing(NerSettings(str(pipeline))) is None
    reason = missing(NerSettings("en_core_web_nonexistent"))
    assert reason is not None and "python -m spacy download en_core_web_nonexistent" in reason
    with pytest.raises(OSError):
        PresidioNer(NerSettings(str(tmp_path / "not-a-pipeline")))


def test_names_are_redacted_before_the_vendor_sees_them(pipeline: Path, tmp_path: Path,
                                                       mock_vendor: MockVendor) -> None:
    g = start_gateway(tmp_path, f"""
vendors:
  mock: {{type: openai, base_url: "{mock_vendor.base_url}", api_key: sk-mock}}
guardrails:
  pii: {{action: redact, restore: true}}
  ner: {{model: "{pipeline}", entities: [PERSON, LOCATION]}}
""")
    try:
        client = openai.OpenAI(base_url=g.base_url, api_key=MASTER_KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="mock/echo", messages=[{"role": "user", "content": TEXT}])
        sent = json.dumps(mock_vendor.last("echo")["body"])
        assert "Whitfield" not in sent and "Springfield" not in sent and "4111" not in sent
        assert "[PERSON_1]" in sent and "[LOCATION_1]" in sent and "[CREDIT_CARD_1]" in sent
        assert "Dana Whitfield" in (raw.parse().choices[0].message.content or "")  # restored for the caller
        assert raw.headers["x-interlock-guardrails"] == "pii=redact"
    finally:
        g.stop()


def test_a_model_that_cannot_load_fails_closed(tmp_path: Path) -> None:
    broken = tmp_path / "broken-pipeline"
    broken.mkdir()  # a directory, so the start-time check passes, but no pipeline in it
    config = (f"simulator: {{enabled: true, time_scale: 0}}\nguardrails:\n  pii: {{action: monitor}}\n"
              f"  ner: {{model: \"{broken}\"}}\n")
    with running_gateway(config, tmp_path) as (gw, loop):
        proto = _chat_in_process(gw, loop, TEXT)
        assert proto.status == 503
        assert json.loads(b"".join(proto.chunks))["error"]["code"] == "guardrail_unavailable"
