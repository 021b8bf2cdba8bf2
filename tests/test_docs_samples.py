"""Every code sample in README.md and docs/ runs against a real gateway, so a sample cannot rot.

One case per page; the convention (what runs, what is skipped, how a config restarts the gateway) is in
tests/docs_samples.py and docs/contributing.md. The runner itself is tested on tests/data/docs_samples/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs_samples import SampleError, blocks, pages, run_page

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "data" / "docs_samples"

PAGES = [p.relative_to(ROOT).as_posix() for p in pages(ROOT)]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_page_samples(page: str, tmp_path: Path) -> None:
    run_page(ROOT / page, page, tmp_path)


def test_pages_cover_readme_and_docs() -> None:
    assert PAGES[0] == "README.md"
    assert "docs/architecture.md" in PAGES


# --- the runner itself --------------------------------------------------------------------------------

def test_runner_runs_carries_and_fails_at_the_broken_block(tmp_path: Path) -> None:
    fixture = FIXTURES / "failing.md"
    with pytest.raises(SampleError) as failed:
        run_page(fixture, "failing.md", tmp_path)
    message = str(failed.value)
    broken = next(b for b in blocks(fixture.read_text()) if "fast-sim" in b.code)
    assert message.startswith(f"failing.md:{broken.line}: the ```python block failed (exit status 1)")
    assert "model was not fast-sim" in message  # the failed block's own output
    # The skipped block (it would leave a marker and fail) did not run; the ones before the failure did.
    assert not (tmp_path / "skipped-block-ran").exists()
    assert (tmp_path / "python-saw-carried-variable").read_text() == "carried-42"
    assert not (tmp_path / "after-failure-ran").exists()


def test_runner_restarts_the_gateway_with_a_config_block(tmp_path: Path) -> None:
    run = run_page(FIXTURES / "config.md", "config.md", tmp_path)
    assert [kind for _, kind in run.ran] == ["shell", "config", "shell"]


def test_a_config_the_gateway_refuses_fails_at_its_block(tmp_path: Path) -> None:
    page = tmp_path / "bad-config.md"
    page.write_text("# Bad\n\n```yaml\n# interlock.yaml\nserver: {prot: 1}\n```\n")
    with pytest.raises(SampleError, match=r"bad-config.md:3: .*did not start with this config(.|\n)*prot"):
        run_page(page, "bad-config.md", tmp_path / "run")


def test_parser_marks_skips_and_only_runs_the_agreed_fences() -> None:
    found = blocks((FIXTURES / "failing.md").read_text())
    kinds = [(b.lang, b.kind, b.skip) for b in found]
    assert ("bash", "shell", "needs a real vendor key, which tests never have") in kinds
    assert ("json", None, None) in kinds
    assert all(b.kind is None or b.lang in ("sh", "bash", "python", "yaml") for b in found)


def test_malformed_directive_is_an_error() -> None:
    with pytest.raises(SampleError, match="malformed sample directive"):
        blocks("<!-- sample: skpi -->\n```sh\ntrue\n```\n", "bad.md")


def test_fence_names_that_would_never_run_are_errors() -> None:
    with pytest.raises(SampleError, match="never run"):
        blocks("```shell\nexit 1\n```\n", "bad.md")


def test_unclosed_fence_is_an_error() -> None:
    with pytest.raises(SampleError, match="never closed"):
        blocks("text\n```python\nprint(1)\n", "bad.md")


def test_indented_fences_in_lists() -> None:
    found = blocks("1. step\n\n    ```sh\n    echo one\n    ```\n", "list.md")
    assert [(b.kind, b.code) for b in found] == [("shell", "echo one\n")]


# --- the README -------------------------------------------------------------------------------------

def test_readme_is_short_and_its_sdk_calls_run() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, "README.md is at most 250 lines: move the detail into docs/"
    run = [b for b in blocks(text, "README.md") if b.kind is not None and b.skip is None]
    assert any("from openai import OpenAI" in b.code for b in run)
    assert any("from anthropic import Anthropic" in b.code for b in run)
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert target in PAGES or (ROOT / target).exists() or target.removeprefix("docs/") in _nav(), target


def _nav() -> str:
    return (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
