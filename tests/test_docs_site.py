"""The built docs site served at /docs: files with their types, folders by index.html, no way out of the site."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from interlock.console.docs import docs_dir
from interlock.console.web import load_tree
from tests.conftest import CHROMIUM, MASTER_KEY, GatewayProcess, clean_env, start_gateway

SECRET = b"outside the site: never served"


def _site(root: Path) -> Path:
    site = root / "site"
    (site / "guides" / "budgets").mkdir(parents=True)
    (site / "assets").mkdir()
    (site / "index.html").write_text("<!doctype html><title>home</title>docs home")
    (site / "guides" / "budgets" / "index.html").write_text("<!doctype html><title>budgets</title>budgets page")
    (site / "assets" / "main.css").write_text("body { color: black }")
    (site / "search_index.json").write_text('{"docs": []}')
    (site / "notes.unknown-type").write_text("not a type served")
    (root / "secret.html").write_bytes(SECRET)
    (site / "link.html").symlink_to(root / "secret.html")
    (site / "linked").symlink_to(root)
    return site


@pytest.fixture(scope="module")
def docs_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("docs")
    site = _site(root)
    gw = start_gateway(root / "gw", None, clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_DOCS_DIR=str(site)))
    yield gw
    gw.stop()


def _get(gw: GatewayProcess, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _raw(gw: GatewayProcess, target: bytes) -> bytes:
    """A request line sent as bytes (http.client refuses some of these targets): the whole answer."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_files_with_their_types(docs_gateway: GatewayProcess) -> None:
    status, headers, body = _get(docs_gateway, "/docs/")
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert b"docs home" in body
    assert "content-security-policy" in headers and headers["x-content-type-options"] == "nosniff"
    status, headers, body = _get(docs_gateway, "/docs/assets/main.css")
    assert (status, headers["content-type"], body) == (200, "text/css; charset=utf-8", b"body { color: black }")
    status, headers, _ = _get(docs_gateway, "/docs/search_index.json")
    assert (status, headers["content-type"]) == (200, "application/json")
    status, headers, _ = _get(docs_gateway, "/docs/assets/main.css", "HEAD")
    assert status == 200


def test_folders_answer_with_their_index(docs_gateway: GatewayProcess) -> None:
    status, _, body = _get(docs_gateway, "/docs/guides/budgets/")
    assert status == 200 and b"budgets page" in body
    status, _, body = _get(docs_gateway, "/docs/guides/budgets/index.html")
    assert status == 200 and b"budgets page" in body


def test_docs_without_slash_redirects(docs_gateway: GatewayProcess) -> None:
    status, headers, _ = _get(docs_gateway, "/docs")
    assert (status, headers["location"]) == (301, "/docs/")


def test_no_auth_needed(docs_gateway: GatewayProcess) -> None:
    # _get sends no Authorization header at all.
    assert _get(docs_gateway, "/docs/")[0] == 200


@pytest.mark.parametrize("path", [
    "/docs/nope.html", "/docs/guides/budgets", "/docs/guides/", "/docs/notes.unknown-type", "/docs/link.html",
    "/docs/linked/secret.html", "/docs/../secret.html", "/docs/guides/../../secret.html",
    "/docs/%2e%2e/secret.html", "/docs/%2E%2E/secret.html", "/docs/..%2fsecret.html", "/docs/%2e%2e%2fsecret.html",
    "/docs/guides/%2e%2e/%2e%2e/secret.html", "/docs/secret.html%00.css", "/docs//etc/passwd",
])
def test_missing_and_traversal_are_json_404s(docs_gateway: GatewayProcess, path: str) -> None:
    status, headers, body = _get(docs_gateway, path)
    assert status == 404, (path, status)
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "not_found" and error["type"] == "invalid_request_error"
    assert SECRET not in body


@pytest.mark.parametrize("target", [b"/docs/\x00", b"/docs/..\x00/secret.html", b"/docs/%00", b"/docs/..%00"])
def test_nul_never_serves_a_file(docs_gateway: GatewayProcess, target: bytes) -> None:
    answer = _raw(docs_gateway, target)
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 404), answer[:200]
    assert SECRET not in answer


def test_console_links_the_docs_only_when_built(docs_gateway: GatewayProcess, tmp_path: Path) -> None:
    status, _, page = _get(docs_gateway, "/console/signin")
    assert status == 200 and b'<a href="/docs/">Docs</a>' in page
    bare = start_gateway(tmp_path / "bare", None,
                         clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_DOCS_DIR=str(tmp_path / "none")))
    try:
        status, _, page = _get(bare, "/console/signin")
        assert status == 200 and b">Docs</a>" not in page
        status, headers, _ = _get(bare, "/docs/")
        assert status == 404 and headers["content-type"] == "application/json"
    finally:
        bare.stop()


def test_load_tree_reads_only_regular_files_inside(tmp_path: Path) -> None:
    site = _site(tmp_path)
    files = load_tree(site)
    assert set(files) == {"", "index.html", "guides/budgets/", "guides/budgets/index.html", "assets/main.css",
                          "search_index.json"}
    assert docs_dir({"INTERLOCK_DOCS_DIR": str(site)}) == site
    assert docs_dir({"INTERLOCK_DOCS_DIR": str(tmp_path / "missing")}) is None


# --- the build's strictness: mkdocs.yml's validation settings under --strict -----------------------------

ROOT = Path(__file__).resolve().parent.parent


def _make_docs_flags() -> list[str]:
    """The flags ``make docs`` passes to ``mkdocs build`` (``--quiet`` would hide the warnings --strict counts)."""
    recipe = (ROOT / "Makefile").read_text().split("\ndocs:", 1)[1]
    line = next(line for line in recipe.splitlines() if "mkdocs build" in line)
    return line.split("mkdocs build", 1)[1].split()


def _build(tmp: Path, pages: dict[str, str], nav: list[str]) -> subprocess.CompletedProcess[str]:
    """``mkdocs build`` as ``make docs`` runs it, of ``pages`` with the repository's mkdocs.yml (theme,
    validation), its nav replaced by ``nav`` and without the reference hook (it needs the whole docs folder)."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config.pop("hooks")
    docs = tmp / "docs"
    docs.mkdir()
    for name, text in pages.items():
        (docs / name).write_text(text)
    config.update(docs_dir=str(docs), site_dir=str(tmp / "site"), nav=nav)
    (tmp / "mkdocs.yml").write_text(yaml.safe_dump(config))
    flags = _make_docs_flags()
    assert "--strict" in flags
    return subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", *flags, "-f",
                           str(tmp / "mkdocs.yml")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "true"}, check=False)


@pytest.mark.parametrize(("pages", "nav", "problem"), [
    ({"index.md": "# Home\n\n[a](other.md#there)\n", "other.md": "# Other\n\n## There\n"},
     ["index.md", "other.md"], None),
    ({"index.md": "# Home\n\n[a](missing.md)\n"}, ["index.md"], "missing.md"),
    ({"index.md": "# Home\n\n[a](other.md#nowhere)\n", "other.md": "# Other\n"}, ["index.md", "other.md"],
     "nowhere"),
    ({"index.md": "# Home\n", "orphan.md": "# Orphan\n"}, ["index.md"], "orphan.md"),
    ({"index.md": "# Home\n"}, ["index.md", "guides/absent.md"], "absent.md"),
])
def test_strict_build_fails_on_broken_links_and_missing_pages(tmp_path: Path, pages: dict[str, str],
                                                              nav: list[str], problem: str | None) -> None:
    done = _build(tmp_path, pages, nav)
    if problem is None:
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "site" / "index.html").is_file()
    else:
        assert done.returncode != 0 and problem in done.stderr, done.stderr


def test_site_config_needs_no_network() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["theme"]["name"] == "material" and config["theme"]["font"] is False  # no Google Fonts
    assert config["plugins"] == ["search"]  # no social cards, no privacy plugin fetching assets
    assert config["docs_dir"] == "docs" and config["site_dir"] == "site"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                    "(scripts/debian_packages.sh installs it in make test)")
def test_built_site_works_in_a_browser_under_the_docs_policy(tmp_path: Path, browser: Any) -> None:
    """Material's pages, served by the gateway with DOCS_HEADERS: no policy violation, nothing fetched from
    another host, and the search (a web worker reading the index) finds a word."""
    pages = {"index.md": "# Home\n\nSee [budgets](budgets.md).\n",
             "budgets.md": "# Budgets\n\nA hard budget refuses a request it cannot cover.\n"}
    done = _build(tmp_path, pages, ["index.md", "budgets.md"])
    assert done.returncode == 0, done.stderr
    gw = start_gateway(tmp_path / "gw", None, clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY,
                                                        INTERLOCK_DOCS_DIR=str(tmp_path / "site")))
    context = browser.new_context()
    try:
        page = context.new_page()
        problems: list[str] = []
        requests: list[str] = []
        page.on("request", lambda req: requests.append(req.url))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.add_init_script("document.addEventListener('securitypolicyviolation', "
                             "e => console.error('CSP ' + e.violatedDirective + ' ' + e.blockedURI))")
        page.goto(f"{gw.url}/docs/")
        page.locator("input[name=query]").click()
        page.keyboard.type("cover", delay=20)
        page.locator(".md-search-result__item").first.wait_for(timeout=15000)
        assert "Budgets" in page.locator(".md-search-result").inner_text()
        assert not problems, problems
        assert requests and all(url.startswith(gw.url) for url in requests), requests
    finally:
        context.close()
        gw.stop()
