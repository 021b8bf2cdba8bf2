"""``interlock simulator`` (standalone server) and ``interlock simulate`` (try a model for free).

``simulate`` goes through :class:`SimulatorTransport` and decodes the OpenAI
wire format like a client would, so what it prints (text, TTFT, speed, usage)
is what a gateway would see; the cost is what the model's reference vendor
would charge for that usage at list price, computed by the catalog's cost
engine and labelled *simulated* so nobody mistakes it for a bill.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import orjson

from interlock.catalog import Catalog, load_catalog
from interlock.core.pricing import cost_of
from interlock.core.usage import usage_from_openai
from interlock.core.vendor import Timeouts
from interlock.simulator.engine import FORMATS, Engine
from interlock.simulator.settings import SimulatorSettings
from interlock.simulator.transport import BASE_URL, SimulatorTransport


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value}")
    return value


def _load_settings(path: str | None, overrides: Mapping[str, Any]) -> SimulatorSettings:
    section: dict[str, Any] = {}
    if path:
        # Imported here: only when a settings file is given.
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        raw = data.get("simulator", {}) if isinstance(data, dict) else {}
        section = dict(raw) if isinstance(raw, dict) else {}
    section.update({k: v for k, v in overrides.items() if v is not None})
    return SimulatorSettings.from_config(section)


# -- interlock simulator ----------------------------------------------------------------------


def add_simulator_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulator",
        help="serve the simulated vendor over HTTP (OpenAI, Anthropic and Gemini wire formats)",
        description="Serve simulated versions of every catalog model over HTTP.",
    )
    parser.add_argument("--port", type=_port, required=True, help="port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--format", choices=FORMATS, default=None, help="answer only this wire format (default: all)")
    parser.add_argument("--time-scale", type=_non_negative, default=None, help="delay multiplier; 0 = instant")
    parser.add_argument("--config", default=None, help="interlock.yaml whose simulator: section to use")
    parser.add_argument("--allow-fault-headers", action="store_true", default=None, help="honour x-interlock-simulator-* headers")
    parser.add_argument("--seed", type=int, default=None, help="seed for latency and fault draws")
    parser.set_defaults(func=run_simulator)
    return parser


def run_simulator(args: argparse.Namespace) -> int:
    try:
        settings = _load_settings(
            args.config,
            {"time_scale": args.time_scale, "allow_fault_headers": args.allow_fault_headers, "seed": args.seed},
        )
    except (ValueError, OSError) as exc:
        print(f"interlock simulator: {exc}", file=sys.stderr)
        return 2
    formats = (args.format,) if args.format else FORMATS
    try:
        # Imported here: only when the simulator serves.
        import uvloop

        uvloop.install()
    except ImportError:
        pass  # the default loop works, a little slower
    return asyncio.run(_serve(settings, args.host, args.port, formats))


async def _serve(settings: SimulatorSettings, host: str, port: int, formats: tuple[str, ...]) -> int:
    # Imported here: only when the simulator serves.
    from interlock.simulator import server

    engine = Engine(settings)
    try:
        runner, bound = await server.start(engine, host, port, formats, settings.time_scale)
    except OSError as exc:
        print(f"interlock simulator: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    print(
        f"interlock simulator listening on http://{host}:{bound} "
        f"(formats: {', '.join(formats)}; time scale {settings.time_scale:g})",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


# -- interlock simulate -----------------------------------------------------------------------


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="try a model against the simulator: answer, timing and the simulated cost",
        description="Send one prompt to a simulated model and print the answer, timing and simulated cost.",
    )
    parser.add_argument("--model", required=True, help="catalog model id, e.g. openai/gpt-4.1-mini")
    parser.add_argument("--prompt", required=True, help="the user message to send")
    parser.add_argument("--stream", action="store_true", help="stream the answer as it is generated")
    parser.add_argument("--max-tokens", type=int, default=None, help="the most output tokens to generate")
    parser.add_argument("--time-scale", type=_non_negative, default=1.0,
                        help="multiply the simulated latency (0: answer at once)")
    parser.add_argument("--seed", type=int, default=None, help="request seed (changes the answer)")
    parser.set_defaults(func=run_simulate)
    return parser


def run_simulate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    catalog = load_catalog()
    if catalog.get(args.model) is None:
        print(f"interlock simulate: unknown model {args.model!r} (see `interlock models`)", file=sys.stderr)
        return 2
    if args.max_tokens is not None and args.max_tokens < 1:
        print("interlock simulate: --max-tokens must be >= 1", file=sys.stderr)
        return 2
    return asyncio.run(_simulate(args, catalog, stream))


async def _simulate(args: argparse.Namespace, catalog: Catalog, out: TextIO) -> int:
    transport = SimulatorTransport(SimulatorSettings(time_scale=args.time_scale), catalog)
    request: dict[str, Any] = {"model": args.model, "messages": [{"role": "user", "content": args.prompt}]}
    if args.max_tokens is not None:
        request["max_completion_tokens"] = args.max_tokens
    if args.seed is not None:
        request["seed"] = args.seed
    if args.stream:
        request.update(stream=True, stream_options={"include_usage": True})
    start = time.perf_counter()
    response = await transport.request(
        "POST", f"{BASE_URL}/v1/chat/completions", {"content-type": "application/json"}, orjson.dumps(request), Timeouts()
    )
    first: float | None = None
    usage: dict[str, Any] = {}
    finish = None
    if response.status != 200:
        print(f"simulated error {response.status}: {(await response.read()).decode()}", file=sys.stderr)
        return 1
    if args.stream:
        buffer = b""
        async for data in response.iter_bytes():
            buffer += data
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                payload = event.removeprefix(b"data: ")
                if payload == b"[DONE]":
                    continue
                chunk = orjson.loads(payload)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices", ()):
                    text = choice["delta"].get("content")
                    if text:
                        first = first if first is not None else time.perf_counter()
                        out.write(text)
                        out.flush()
                    finish = choice.get("finish_reason") or finish
    else:
        body = orjson.loads(await response.read())
        first = time.perf_counter()
        choice = body["choices"][0]
        out.write(choice["message"].get("content") or orjson.dumps(choice["message"].get("tool_calls")).decode())
        usage, finish = body["usage"], choice["finish_reason"]
    total = time.perf_counter() - start
    out.write("\n\n")
    _report(out, catalog, args.model, usage, finish, total, (first or start + total) - start, args.time_scale, args.stream)
    return 0


def _report(
    out: TextIO,
    catalog: Catalog,
    model_id: str,
    usage: Mapping[str, Any],
    finish: Any,
    total: float,
    ttft: float,
    scale: float,
    streamed: bool,
) -> None:
    completion = int(usage.get("completion_tokens", 0))
    if scale > 0:  # report simulated seconds: what the real model would take
        total, ttft = total / scale, ttft / scale
    generating = total - ttft if streamed else total
    speed = f"{completion / generating:.1f} tokens/s" if generating > 0 and scale > 0 else "n/a (time scale 0)"
    note = "" if scale == 1 else f" simulated (time scale {scale:g})"
    out.write(f"model           {model_id} (simulated)\n")
    out.write(f"finish reason   {finish}\n")
    if streamed:
        out.write(f"time to first   {ttft:.3f} s{note}\n")
    out.write(f"speed           {speed}\n")
    out.write(f"total           {total:.3f} s{note}\n")
    cached = usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
    reasoning = usage.get("completion_tokens_details", {}).get("reasoning_tokens", 0)
    out.write(
        f"usage           {usage.get('prompt_tokens', 0)} prompt ({cached} cached) + {completion} completion "
        f"({reasoning} reasoning) tokens\n"
    )
    model = catalog.get(model_id)
    route = model.reference_route if model is not None else None
    if route is None:
        out.write("cost            unknown (the catalog has no reference price for this model)\n")
        return
    cost = cost_of(route.price, usage_from_openai(usage))
    out.write(f"cost            ${cost.usd_str} simulated, at {route.vendor} list price\n")
