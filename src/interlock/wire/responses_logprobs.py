"""Token log probabilities in the Responses API (``include: ["message.output_text.logprobs"]``).

The canonical answer carries Chat Completions' ``choices[].logprobs.content``
(``ChatCompletionTokenLogprob``). The Responses API reports them only when the
request includes ``message.output_text.logprobs``: on the message's
``output_text`` part as ``LogProb`` items (with ``bytes``) and on each
``response.output_text.delta`` / ``.done`` event as ``ResponseLogProb`` items
(token and logprob, no bytes).
"""

from __future__ import annotations

from collections.abc import Mapping

from interlock.core.canonical import ChatRequest, ChoiceLogprobs, TokenLogprob
from interlock.core.errors import InvalidRequest
from interlock.wire.responses_output import Echo, LogProb, OutputItem

INCLUDE_LOGPROBS = "message.output_text.logprobs"
#: The ``include`` values of the OpenAPI document; interlock produces only the logprobs one.
INCLUDABLE = frozenset({"file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
                        "message.input_image.image_url", "computer_call_output.output.image_url",
                        "code_interpreter_call.outputs", "reasoning.encrypted_content", INCLUDE_LOGPROBS})


def include_field(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    """``include``: a list of known values; asking for text logprobs asks the vendor for them."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest("Invalid type for 'include': expected an array of strings.", param=key,
                             code="invalid_type")
    for item in value:
        if item not in INCLUDABLE:
            raise InvalidRequest(f"Invalid value for 'include': '{item}'. Supported values are: "
                                 + ", ".join(sorted(INCLUDABLE)) + ".", param=key, code="invalid_value")
    if INCLUDE_LOGPROBS in value:
        out["logprobs"] = True


def wants_logprobs(data: Mapping[str, object]) -> bool:
    include = data.get("include")
    return isinstance(include, list) and INCLUDE_LOGPROBS in include


def chat_entries(choice_logprobs: ChoiceLogprobs | None) -> list[TokenLogprob]:
    """The ``content`` entries of a chat ``logprobs`` object (none when it is not one)."""
    content = choice_logprobs.get("content") if isinstance(choice_logprobs, dict) else None
    return [e for e in content if isinstance(e, dict)] if isinstance(content, list) else []


def _top(entry: TokenLogprob, with_bytes: bool) -> list[LogProb]:
    tops = entry.get("top_logprobs")
    out: list[LogProb] = []
    for top in tops if isinstance(tops, list) else ():
        if isinstance(top, dict):
            item: LogProb = {"token": str(top.get("token", "")), "logprob": top.get("logprob", 0.0)}
            if with_bytes:
                item["bytes"] = top.get("bytes") or []
            out.append(item)
    return out


def part_logprobs(choice_logprobs: ChoiceLogprobs | None) -> list[LogProb]:
    """Chat logprobs → the ``output_text`` part's ``LogProb`` items."""
    return [{"token": str(e.get("token", "")), "logprob": e.get("logprob", 0.0), "bytes": e.get("bytes") or [],
             "top_logprobs": _top(e, True)} for e in chat_entries(choice_logprobs)]


def event_logprobs(choice_logprobs: ChoiceLogprobs | None) -> list[LogProb]:
    """Chat logprobs → the text events' ``ResponseLogProb`` items."""
    return [{"token": str(e.get("token", "")), "logprob": e.get("logprob", 0.0), "top_logprobs": _top(e, False)}
            for e in chat_entries(choice_logprobs)]


def attach(output: list[OutputItem], choice_logprobs: ChoiceLogprobs | None) -> None:
    """Put the answer's logprobs on its message's ``output_text`` part."""
    for item in output:
        if item["type"] == "message":
            for part in item["content"]:
                if part["type"] == "output_text":
                    part["logprobs"] = part_logprobs(choice_logprobs)
                    return
