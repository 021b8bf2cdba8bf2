"""Run the code samples of a Markdown page against a real gateway (the convention in docs/contributing.md).

Executed fences: ```python, ```sh and ```bash, each alone, in page order, against one gateway per page (the
embedded default: the simulator, a temporary INTERLOCK_HOME, no vendor key). A ```yaml block whose first line
is ``# interlock.yaml`` is a gateway config: it is written and the page's gateway restarted with it before
the next block. A block directly preceded by ``<!-- sample: skip — reason -->`` is not run. Samples address
the gateway as http://127.0.0.1:8400 (rewritten to the test gateway's port) and read the admin key from
INTERLOCK_KEY. Shell blocks run under ``set -euo pipefail`` and ``set -a``; the variables they set carry to
the page's later blocks, shell and Python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway

DEFAULT_ADDRESS = re.compile(r"(127\.0\.0\.1|localhost):8400\b")
SKIP = re.compile(r"^<!--\s*sample:\s*skip\s*(?:—|--|-|:)\s*(?P<reason>\S.*?)\s*-->$")
DIRECTIVE = re.compile(r"^<!--\s*sample\b")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^`]*$")
SHELLS = ("sh", "bash")
#: Fences that look like code to run but are not the agreed names: an error, so no sample silently never runs.
AMBIGUOUS = frozenset({"shell", "zsh", "py", "python3", "pycon"})
CONFIG_HEADER = "# interlock.yaml"
BLOCK_TIMEOUT = 180.0
#: Shell variables that are the shell's own, not the sample's.
_SHELL_OWN = frozenset({"_", "SHLVL", "PWD", "OLDPWD", "BASH_EXECUTION_STRING"})


class SampleError(AssertionError):
    """A sample block failed (or the page breaks the convention): the page, the line and the output."""


@dataclass(frozen=True, slots=True)
class Block:
    lang: str
    line: int  # the opening fence's line, 1-based
    code: str
    skip: str | None  # the reason, when the block is marked to be skipped

    @property
    def kind(self) -> str | None:
        """``python``, ``shell`` or ``config`` for a block the runner executes; None for one it only shows."""
        if self.lang == "python":
            return "python"
        if self.lang in SHELLS:
            return "shell"
        if self.lang in ("yaml", "yml") and self.code.lstrip().startswith(CONFIG_HEADER):
            return "config"
        return None


def blocks(text: str, page: str = "<page>") -> list[Block]:
    """Every fenced block of ``text``, with the skip marker that directly precedes it (blank lines between
    are allowed). A ``<!-- sample ... -->`` comment that is not a well-formed skip marker is an error."""
    out: list[Block] = []
    lines = text.splitlines()
    previous = ""  # the last non-blank line outside a block
    i = 0
    while i < len(lines):
        line = lines[i]
        match = FENCE.match(line)
        if match is None:
            if line.strip():
                stripped = line.strip()
                if DIRECTIVE.match(stripped) and SKIP.match(stripped) is None:
                    raise SampleError(f"{page}:{i + 1}: malformed sample directive {stripped!r}; "
                                      "expected <!-- sample: skip — reason -->")
                previous = stripped
            i += 1
            continue
        indent, fence, lang = match.group("indent"), match.group("fence"), match.group("lang").lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = lines[i].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            raw = lines[i]
            body.append(raw[len(indent):] if raw.startswith(indent) else raw.lstrip())
            i += 1
        else:
            raise SampleError(f"{page}:{start + 1}: the fence opened here is never closed")
        if lang in AMBIGUOUS:
            raise SampleError(f"{page}:{start + 1}: a ```{lang} block is never run: write ```sh, ```bash or "
                              "```python (run), or ```text (shown only)")
        skip = SKIP.match(previous)
        out.append(Block(lang, start + 1, "\n".join(body) + "\n", skip.group("reason") if skip else None))
        previous = ""
        i += 1
    return out


class PageRun:
    """One page's gateway, environment and working folder; blocks run one after the other."""

    def __init__(self, page: str, workdir: Path) -> None:
        self.page = page
        self.workdir = workdir
        self.home = workdir / "gateway"
        self.gateway: GatewayProcess | None = None
        self.config: str | None = None
        venv_bin = str(Path(sys.executable).parent)
        self.env = clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_KEY=MASTER_KEY,
                             INTERLOCK_HOME=str(self.home / "state"),
                             PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
        self.env.pop("INTERLOCK_DOCS_DIR", None)
        #: Every block executed, as (line, kind): the runner's tests read it.
        self.ran: list[tuple[int, str]] = []

    # -- the gateway ------------------------------------------------------------------------------------

    def _start(self) -> GatewayProcess:
        if self.gateway is None:
            self.gateway = start_gateway(self.home, self.config, dict(self.env))
            self.env["INTERLOCK_URL"] = self.gateway.url
        return self.gateway

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    # -- blocks -----------------------------------------------------------------------------------------

    def run(self, block: Block) -> None:
        kind = block.kind
        if kind is None or block.skip is not None:
            return
        self.ran.append((block.line, kind))
        if kind == "config":
            self.stop()
            self.config = block.code
            try:
                self._start()
            except RuntimeError as exc:
                raise self._failure(block, "the gateway did not start with this config", str(exc)) from None
            return
        gw = self._start()
        code = DEFAULT_ADDRESS.sub(f"127.0.0.1:{gw.port}", block.code)
        if kind == "python":
            script = self.workdir / f"block-{block.line}.py"
            script.write_text(code)
            argv = [sys.executable, str(script)]
            env_out = None
        else:
            script = self.workdir / f"block-{block.line}.sh"
            env_out = self.workdir / f"block-{block.line}.env"
            script.write_text(f"set -euo pipefail\nset -a\n{code}\nenv -0 > {env_out}\n")
            argv = ["bash", str(script)]
        try:
            done = subprocess.run(argv, cwd=self.workdir, env=self.env, capture_output=True, text=True,
                                  timeout=BLOCK_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise self._failure(block, f"timed out after {BLOCK_TIMEOUT:g} s", _text(exc.stdout) + _text(exc.stderr)) \
                from None
        if done.returncode != 0:
            raise self._failure(block, f"exit status {done.returncode}", done.stdout + done.stderr)
        if env_out is not None:
            self._carry(env_out)

    def _carry(self, env_file: Path) -> None:
        for item in env_file.read_bytes().split(b"\0"):
            name, sep, value = item.decode(errors="replace").partition("=")
            if sep and name not in _SHELL_OWN and not name.startswith("BASH_FUNC_"):
                self.env[name] = value

    def _failure(self, block: Block, what: str, output: str) -> SampleError:
        log = self.gateway.output()[-3000:] if self.gateway is not None else ""
        return SampleError(
            f"{self.page}:{block.line}: the ```{block.lang} block failed ({what})\n"
            f"--- block ---\n{block.code}--- output ---\n{output[-6000:]}"
            + (f"\n--- gateway log (tail) ---\n{log}" if log else ""))


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def run_page(path: Path, name: str, workdir: Path) -> PageRun:
    """Run every sample of the page at ``path`` (shown as ``name``); raise :class:`SampleError` at the first
    that fails. Returns the finished run (what ran)."""
    page = PageRun(name, workdir)
    try:
        for block in blocks(path.read_text(encoding="utf-8"), name):
            page.run(block)
    finally:
        page.stop()
    return page


def pages(root: Path) -> Iterator[Path]:
    """README.md and every page of the docs site, in a stable order."""
    yield root / "README.md"
    yield from sorted((root / "docs").rglob("*.md"))
