"""The OpenAI-compatible wire format: request payloads, streamed chunks, echoed logprobs.

Pure functions over dicts, no I/O, so they are shared by the backend and its tests.
Servers differ in details; what we rely on:

* ``/completions`` chunks carry ``choices[0].text``; ``/chat/completions`` chunks carry
  ``choices[0].delta.content`` (the first chat chunk usually holds only the role).
* With ``stream_options: {"include_usage": true}`` a last chunk carries ``usage``
  (``prompt_tokens``, ``completion_tokens``), often with an empty ``choices`` list.
* ``echo`` + ``logprobs`` on ``/completions`` return ``logprobs.tokens``,
  ``text_offset``, ``token_logprobs`` and ``top_logprobs`` for the prompt too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from gemmawatch.collectors.backends.base import GenerationRequest

log = logging.getLogger(__name__)

#: API styles: which endpoint a request goes to.
APIS = ("completions", "chat")

_BOS_TEXT = "<bos>"


def endpoint(api: str) -> str:
    """Path under the base URL for ``api``."""
    return "/chat/completions" if api == "chat" else "/completions"


def generation_payload(
    model: str,
    request: GenerationRequest,
    *,
    api: str,
    include_usage: bool = True,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The streamed request body for one GenerationRequest.

    ``api="chat"`` sends messages (a plain prompt becomes one user message); the
    server applies its chat template. ``api="completions"`` sends a string prompt; a
    message list is refused there because only the server knows its template.
    """
    payload: dict[str, Any] = {
        "model": model,
        "max_tokens": int(request.max_new_tokens),
        "temperature": float(request.temperature),
        "stream": True,
    }
    if include_usage:
        payload["stream_options"] = {"include_usage": True}
    if request.stop:
        payload["stop"] = list(request.stop)
    if api == "chat":
        payload["messages"] = request.messages()
    else:
        if not isinstance(request.prompt, str):
            raise ValueError("a message list needs api=chat (the completions API takes a plain prompt)")
        payload["prompt"] = request.prompt
    payload.update(extra_body or {})
    return payload


def leading_bos(prompt: str | Sequence[Mapping[str, str]]) -> bool:
    """True when a completions prompt starts with a literal ``<bos>`` (the server adds its own)."""
    return isinstance(prompt, str) and prompt.lstrip().startswith(_BOS_TEXT)


def chunk_text(data: Mapping[str, Any], api: str) -> str:
    """The output text in one streamed chunk ('' for role-only, usage-only or empty chunks)."""
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping):
        return ""
    choice = choices[0]
    if api == "chat":
        delta = choice.get("delta") or choice.get("message") or {}
        content = delta.get("content") if isinstance(delta, Mapping) else None
    else:
        content = choice.get("text")
    return content if isinstance(content, str) else ""


def chunk_finish_reason(data: Mapping[str, Any]) -> str | None:
    """``finish_reason`` of the first choice, if this chunk has one."""
    choices = data.get("choices") or []
    if choices and isinstance(choices[0], Mapping):
        reason = choices[0].get("finish_reason")
        return str(reason) if reason else None
    return None


def chunk_usage(data: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` if the chunk reports usage."""
    usage = data.get("usage")
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


def chunk_error(data: Mapping[str, Any]) -> str | None:
    """The message of an in-stream error object (vLLM and others send ``{"error": ...}``)."""
    error = data.get("error")
    if error is None:
        return None
    if isinstance(error, Mapping):
        return str(error.get("message") or error)
    return str(error)


def loglikelihood_payload(model: str, context: str, continuation: str) -> dict[str, Any]:
    """Body scoring ``context + continuation`` (as lm-eval's local-completions does).

    ``max_tokens=1`` rather than 0: some servers (llama-cpp-python) read 0 as
    "until the context is full".
    """
    return {
        "model": model,
        "prompt": context + continuation,
        "max_tokens": 1,
        "temperature": 0,
        "echo": True,
        "logprobs": 1,
        "stream": False,
    }


class NoPromptLogprobs(ValueError):
    """The response has no echoed prompt logprobs."""


def continuation_logprob(response: Mapping[str, Any], context: str, continuation: str) -> tuple[float, bool]:
    """``(sum of log-probs of the continuation tokens, all of them greedy)`` from an echo response.

    Tokens are assigned by character offset (``text_offset``), not by re-tokenizing,
    so the split matches the server's own tokenizer: a token belongs to the
    continuation when it ends after the context and starts inside the prompt (a
    token straddling the boundary counts as continuation). Greedy means each token's
    log-prob equals the best alternative in ``top_logprobs``. Raises
    NoPromptLogprobs when the server did not echo prompt logprobs.
    """
    choices = response.get("choices") or []
    logprobs = choices[0].get("logprobs") if choices and isinstance(choices[0], Mapping) else None
    if not isinstance(logprobs, Mapping):
        raise NoPromptLogprobs("no logprobs in the response")
    offsets = logprobs.get("text_offset")
    values = logprobs.get("token_logprobs")
    tops = logprobs.get("top_logprobs") or []
    if not isinstance(offsets, list) or not isinstance(values, list) or len(offsets) != len(values):
        raise NoPromptLogprobs("no token_logprobs/text_offset in the response")
    prompt_len = len(context) + len(continuation)
    start = len(context)
    picked: list[int] = []
    for i, offset in enumerate(offsets):
        end = offsets[i + 1] if i + 1 < len(offsets) else prompt_len
        if int(offset) < prompt_len and int(end) > start:
            picked.append(i)
    if not picked:
        raise NoPromptLogprobs("the response echoes no prompt tokens")
    total = 0.0
    greedy = True
    for i in picked:
        value = values[i]
        if value is None:
            # Servers give no log-prob for the very first token (nothing conditions it).
            raise NoPromptLogprobs("the first prompt token has no log-prob (empty context)")
        total += float(value)
        top = tops[i] if i < len(tops) else None
        if isinstance(top, Mapping) and top and float(value) < max(float(v) for v in top.values()) - 1e-4:
            greedy = False
    return total, greedy
