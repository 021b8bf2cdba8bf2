"""cli.md: every ``interlock`` command and option, from its argparse parser (``interlock.cli.build_parser``)."""

from __future__ import annotations

import argparse
import os

from .common import GENERATED_NOTE

#: Options whose parser gives no help text.
CLI_HELP = {
    "--config": "the config file (default: $INTERLOCK_CONFIG, else the embedded default)",
    "-h": "show the command's help and exit",
    "--version": "print interlock's version and exit",
    "action": "what to do (one of the choices)",
}


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name, "") or sub.description or "", sub))
    return out


def cli_commands() -> list[tuple[str, str, argparse.ArgumentParser]]:
    """Every command as (``interlock models``, its help, its parser), depth first."""
    from interlock.cli import build_parser

    root = build_parser()
    out = [("interlock", root.description or "", root)]

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        for name, help_, sub in _subcommands(parser):
            out.append((f"{prefix} {name}", help_, sub))
            walk(f"{prefix} {name}", sub)

    walk("interlock", root)
    return out


def cli_options(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    """(names, meaning, default) of every argument of ``parser`` but the subcommand selector."""
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        names = ", ".join(action.option_strings) or action.metavar or action.dest
        if not isinstance(names, str):
            names = str(names)
        if action.choices and not action.option_strings:
            names = f"{action.dest} ({' / '.join(map(str, action.choices))})"
        elif action.choices:
            names += " {" + ",".join(map(str, action.choices)) + "}"
        help_ = action.help if action.help and action.help != argparse.SUPPRESS else ""
        if not help_:
            help_ = next((CLI_HELP[o] for o in (*action.option_strings, action.dest) if o in CLI_HELP), "")
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) or isinstance(action, argparse._HelpAction) \
            else f"`{default}`"
        rows.append((names, help_.replace("%(default)s", str(default)).replace("%%", "%"), shown))
    return rows


def cli_page() -> str:
    # argparse wraps usage lines to the terminal's width: the same width on every machine.
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return _cli_page()
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


def _cli_page() -> str:
    lines = ["# CLI reference", "", GENERATED_NOTE.strip(), "",
             "Every `interlock` command and option, from the command's own parser. `interlock COMMAND --help` "
             "prints the same. A failing command prints one line on stderr and exits with status 2 "
             "(`INTERLOCK_DEBUG=1` shows the traceback).", ""]
    for name, help_, parser in cli_commands():
        lines += [f"## `{name}`", "", (help_[:1].upper() + help_[1:]) if help_ else "", "",
                  "```text", parser.format_usage().strip(), "```", ""]
        rows = [r for r in cli_options(parser) if r[0] not in ("-h, --help",)]
        if rows:
            lines += ["| argument | meaning | default |", "|---|---|---|"]
            lines += [f"| `{n}` | {h.replace('|', '&#124;')} | {d} |" for n, h, d in rows]
            lines.append("")
    return "\n".join(lines)

