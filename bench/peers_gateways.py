"""The gateways ``bench/peers.py`` measures: pinned versions, installs, configurations and start commands.

Each peer is installed from a package registry (PyPI, npm) into its own directory under
``~/.cache/interlock-bench/peers`` (never into the project's virtualenv) and configured to forward the
model ``bench-model`` to the mock vendor with its OpenAI provider, in the settings its own documentation
gives for production (recorded in the results). ``prepare()`` returns how to start and call a gateway
(``Launch``), or why it is not measured (``NotMeasured``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from harness import GATEWAY_CORE, HOST, MASTER_KEY, REPO, UPSTREAM_KEY, VENDOR_MODEL, compiled_env, log

# Exact pins. LiteLLM 1.108.7 is the newest release whose `[proxy]` extra resolves from PyPI here: 1.108.8 to
# 1.109.x need litellm-enterprise or litellm-proxy-extras builds, and 1.110 a `litellm-proxy` package, that
# PyPI does not serve.
LITELLM_VERSION = "1.108.7"
PORTKEY_VERSION = "1.15.2"
# @hono/node-server 1.14.2 and later (the semver range of the gateway lets npm take 1.19.x) answer every
# streaming request with 500 ("TypeError: immutable" appending a header); 1.14.1 is the newest that streams.
HONO_NODE_SERVER_VERSION = "1.14.1"
BIFROST_VERSION = "1.6.3"
HELICONE_PACKAGE = "@helicone/ai-gateway"

LITELLM_KEY = "sk-bench-master-key"  # LiteLLM wants its master key to start with sk-
ALL = ("interlock", "litellm", "portkey", "bifrost", "helicone")
LABELS = {
    "direct": "direct to mock (baseline)",
    "interlock": "interlock",
    "litellm": "LiteLLM proxy",
    "portkey": "Portkey gateway",
    "bifrost": "Bifrost",
    "helicone": "Helicone AI gateway",
}
INSTALL_TIMEOUT = 1200.0


@dataclass(frozen=True)
class Launch:
    """How to start one gateway (pinned to the gateway core) and call it."""

    name: str
    version: str
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    health_path: str
    model: str
    key: str
    headers: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotMeasured:
    name: str
    reason: str
    version: str | None = None
    failed: bool = False  # True: it should have been measured (a broken install): the run exits non-zero


class InstallError(Exception):
    pass


def _run(cmd: list[str], *, cwd: Path | None = None, timeout: float = INSTALL_TIMEOUT) -> str:
    log("$ " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{' '.join(cmd)}: {exc}") from None
    if proc.returncode != 0:
        raise InstallError(f"{' '.join(cmd)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout


def _peer_env(**extra: str) -> dict[str, str]:
    """The harness's environment without what would reach into interlock's or a database's settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL", "VIRTUAL_ENV")}
    env.update(extra)
    return env


PINNED = ["taskset", "-c", str(GATEWAY_CORE)]
#: Every core this process may use, read at import, before a harness pins itself to the load core (its
#: children inherit that): an "unpinned" gateway is started with these.
UNPINNED = ["taskset", "-c", ",".join(map(str, sorted(os.sched_getaffinity(0))))]


# ---------------------------------------------------------------------------
# interlock


def interlock_config(mock_port: int, request_log: str) -> str:
    """bench/interlock.bench.yaml's vendor; the request log at interlock's default (SQLite) unless 'off'."""
    text = (
        "vendors:\n  mock:\n    type: openai\n"
        f"    base_url: http://{HOST}:{mock_port}/v1\n    api_key: {UPSTREAM_KEY}\n"
    )
    if request_log == "off":
        text += "logging:\n  enabled: false\n"
    return text


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def prepare_interlock(executable: Path, port: int, mock_port: int, request_log: str, tmp: Path, *,
                      engine: str = "native", workers: int = 1, pinned: bool = True, compiled: bool = False) -> Launch:
    """``interlock serve`` on ``port`` in front of the mock; one worker pinned to the gateway core unless told;
    ``compiled``: the compiled build (``make fast``), built first if it is missing or stale."""
    if not executable.exists():
        raise InstallError(f"{executable} does not exist: install the gateway first (make bench-peers does)")
    home = tmp / "interlock-home"
    home.mkdir(exist_ok=True)
    config = tmp / "interlock.peers.yaml"
    config.write_text(interlock_config(mock_port, request_log))
    try:
        dist = version("interlock")
    except Exception:  # noqa: BLE001 - informational only
        dist = "?"
    commit = _git_commit()
    cmd = [*(PINNED if pinned else UNPINNED), str(executable), "serve", "--host", HOST, "--port", str(port),
           "--workers", str(workers), "--config", str(config), "--engine", engine]
    env = dict(os.environ, INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home))
    if compiled:
        env = compiled_env(env)
    log_setting = ("off (logging: enabled: false)" if request_log == "off"
                   else "on: interlock's default, level metadata into SQLite under INTERLOCK_HOME")
    return Launch(
        name="interlock",
        version=f"{dist} ({commit})" if commit else dist,
        cmd=cmd,
        env=env,
        cwd=REPO,
        health_path="/healthz",
        model="mock/bench-model",
        key=MASTER_KEY,
        settings={
            "server": f"interlock serve --workers {workers} --engine {engine}"
                      f"{' (compiled build: make fast)' if compiled else ''} "
                      f"({'pinned to core ' + str(GATEWAY_CORE) if pinned else 'on every core'})",
            "request log": log_setting,
            "config": interlock_config(mock_port, request_log),
        },
    )


# ---------------------------------------------------------------------------
# LiteLLM proxy (PyPI litellm[proxy], its own virtualenv)

LITELLM_ENV = {
    "LITELLM_LOG": "ERROR",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map at start
    "LITELLM_TELEMETRY_DISABLED": "True",  # the telemetry veto (the --telemetry flag is a no-op in 1.108)
}


def litellm_config(mock_port: int) -> str:
    """model_list: bench-model -> openai/bench-model at the mock; logging and spend tracking off, no DB."""
    return (
        "model_list:\n"
        f"  - model_name: {VENDOR_MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{VENDOR_MODEL}\n"
        f"      api_base: http://{HOST}:{mock_port}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "litellm_settings:\n"
        "  set_verbose: false\n"
        "  turn_off_message_logging: true\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
        "  disable_spend_logs: true\n"
        "  disable_error_logs: true\n"
    )


def _venv_version(python: Path, dist: str) -> str | None:
    if not python.exists():
        return None
    proc = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def install_litellm(cache: Path, install: bool) -> Path:
    """The virtualenv holding litellm[proxy]==LITELLM_VERSION, created or updated when ``install``."""
    venv = cache / "litellm"
    python = venv / "bin" / "python"
    if _venv_version(python, "litellm") == LITELLM_VERSION and (venv / "bin" / "litellm").exists():
        return venv
    if not install:
        raise InstallError(f"litellm {LITELLM_VERSION} is not installed in {venv} (--no-install)")
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(python), "-m", "pip", "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"])
    if _venv_version(python, "litellm") != LITELLM_VERSION:
        raise InstallError(f"pip did not leave litellm {LITELLM_VERSION} in {venv}")
    return venv


def prepare_litellm(cache: Path, install: bool, port: int, mock_port: int, tmp: Path) -> Launch:
    venv = install_litellm(cache, install)
    config = tmp / "litellm.yaml"
    config.write_text(litellm_config(mock_port))
    server = _venv_version(venv / "bin" / "python", "uvicorn")
    cmd = [*PINNED, str(venv / "bin" / "litellm"), "--config", str(config), "--host", HOST,
           "--port", str(port), "--num_workers", "1"]
    return Launch(
        name="litellm",
        version=LITELLM_VERSION,
        cmd=cmd,
        env=_peer_env(**LITELLM_ENV),
        cwd=tmp,
        health_path="/health/liveliness",
        model=VENDOR_MODEL,
        key=LITELLM_KEY,
        settings={
            "server": f"litellm --num_workers 1 (uvicorn {server}, uvloop), no database",
            "environment": dict(LITELLM_ENV),
            "config": litellm_config(mock_port),
        },
    )


# ---------------------------------------------------------------------------
# Portkey gateway (npm @portkey-ai/gateway, Node.js)


def portkey_package_json() -> dict[str, Any]:
    return {
        "name": "interlock-bench-portkey",
        "private": True,
        "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION},
        "overrides": {"@hono/node-server": HONO_NODE_SERVER_VERSION},
    }


def portkey_headers(mock_port: int) -> dict[str, str]:
    """Portkey's open-source gateway is routed per request: the provider and its base URL in headers."""
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": f"http://{HOST}:{mock_port}/v1"}


def _npm_version(root: Path, package: str) -> str | None:
    try:
        return str(json.loads((root / "node_modules" / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _npm_install(root: Path, package_json: dict[str, Any], pins: dict[str, str], install: bool) -> None:
    """``npm install`` in ``root`` unless every package of ``pins`` is there at its version."""
    manifest = json.dumps(package_json, indent=2) + "\n"
    current = (root / "package.json").read_text() if (root / "package.json").exists() else None
    if current == manifest and all(_npm_version(root, p) == v for p, v in pins.items()):
        return
    if not install:
        raise InstallError(f"{', '.join(f'{p}@{v}' for p, v in pins.items())} not installed in {root} (--no-install)")
    if shutil.which("npm") is None:
        raise InstallError("npm is missing (Debian: apt-get install nodejs npm)")
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(manifest)
    _run(["npm", "install", "--no-audit", "--no-fund", "--omit=dev"], cwd=root)
    wrong = {p: _npm_version(root, p) for p, v in pins.items() if _npm_version(root, p) != v}
    if wrong:
        raise InstallError(f"npm install in {root} left {wrong}, not {pins}")


def prepare_portkey(cache: Path, install: bool, port: int, mock_port: int) -> Launch:
    root = cache / "portkey"
    _npm_install(root, portkey_package_json(),
                 {"@portkey-ai/gateway": PORTKEY_VERSION, "@hono/node-server": HONO_NODE_SERVER_VERSION}, install)
    node = shutil.which("node")
    if node is None:
        raise InstallError("node is missing (Debian: apt-get install nodejs)")
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    server = root / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    return Launch(
        name="portkey",
        version=f"{PORTKEY_VERSION} (@hono/node-server {HONO_NODE_SERVER_VERSION}, Node.js {node_version})",
        cmd=[*PINNED, node, str(server), f"--port={port}", "--headless"],
        env=_peer_env(NODE_ENV="production"),
        cwd=root,
        health_path="/",
        model=VENDOR_MODEL,
        key=UPSTREAM_KEY,  # no gateway key: the vendor's key passes through
        headers=portkey_headers(mock_port),
        settings={
            "server": "the package's Node.js server (build/start-server.js), NODE_ENV=production, --headless "
                      "(no console UI), no cache, no Redis",
            "routing": "per request: x-portkey-provider: openai, x-portkey-custom-host: the mock's /v1 "
                       "(the open-source gateway has no server-side routing file); Authorization carries the "
                       "vendor key, which the gateway passes on",
            "package.json": portkey_package_json(),
        },
    )


# ---------------------------------------------------------------------------
# Bifrost and Helicone: tried, not measurable from the registries


def _has_native_binary(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(str(path.relative_to(root)))
    return found


def check_bifrost(cache: Path, install: bool) -> NotMeasured:
    root = cache / "bifrost"
    package = "@maximhq/bifrost"
    try:
        _npm_install(root, {"name": "interlock-bench-bifrost", "private": True,
                            "dependencies": {package: BIFROST_VERSION}}, {package: BIFROST_VERSION}, install)
    except InstallError as exc:
        return NotMeasured("bifrost", f"{package}@{BIFROST_VERSION} could not be installed from npm: {exc}")
    binaries = _has_native_binary(root / "node_modules" / "@maximhq" / "bifrost")
    if binaries:
        return NotMeasured("bifrost", f"{package}@{BIFROST_VERSION} ships {', '.join(binaries)}, which this "
                                      "harness does not drive yet", BIFROST_VERSION)
    return NotMeasured(
        "bifrost",
        f"npm's {package}@{BIFROST_VERSION} is only a launcher (bin.js, no dependencies) that downloads the "
        "Bifrost server binary from its vendor's own site on first run; no registry this machine reaches (PyPI, "
        "npm, Debian) carries the server itself",
        BIFROST_VERSION,
    )


def check_helicone() -> NotMeasured:
    if shutil.which("npm") is None:
        return NotMeasured("helicone", "npm is missing")
    proc = subprocess.run(["npm", "view", HELICONE_PACKAGE, "version"], capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        first = next((line for line in proc.stderr.splitlines() if "404" in line or "ERR" in line.upper()), "")
        return NotMeasured(
            "helicone",
            f"the npm registry has no {HELICONE_PACKAGE} ({first.strip() or f'npm view exited {proc.returncode}'}); "
            "Helicone's AI gateway is not on PyPI (its `helicone` packages there are client wrappers) nor in Debian",
        )
    return NotMeasured("helicone", f"{HELICONE_PACKAGE} {proc.stdout.strip()} is on npm, but this harness does "
                                   "not drive it yet", proc.stdout.strip())

