"""The relay: a tiny HTTP server in the gemmawatch process that answers garak's prompts with a loaded backend.

garak runs in its own interpreter (see :mod:`gemmawatch.evals.redteam.bridge`); the relay
keeps the model loaded once, here, and works for every backend. It binds 127.0.0.1 on a
free port and accepts only requests carrying its random bearer token.

``POST /generate`` with ``{"prompt": str, "generations": int}`` answers
``{"outputs": [str | null, ...]}``. Each output is the **continuation only**: a base
model that starts by repeating the prompt would otherwise hand garak's detectors the
attack text itself (an encoding probe's payload, an injected instruction) and every
echo would count as a hit. :func:`strip_leading_echo` removes leading copies of the
prompt, whitespace-tolerant, including one cut short by the token limit;
:func:`strip_echoes` also the exact copies further on and every span of 20 or more
characters copied verbatim from the prompt (a near-echo). An output
that was *nothing but* the prompt goes to garak as null, like a failed generation:
garak counts it as unscored, since an empty answer would be a hit for detectors that
look for a refusal (``mitigation.MitigationBypass``). Every answer is kept in an
:class:`AnswerLog` for the import. Requests are answered one at a time (backends are
not thread-safe).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "MIN_COPY_CHARS",
    "MIN_ECHO_CHARS",
    "Answer",
    "AnswerLog",
    "Relay",
    "RelayStats",
    "strip_copied_spans",
    "strip_echoes",
    "strip_leading_echo",
]

#: Echoes with fewer non-space characters are kept (too likely to be ordinary words of an answer).
MIN_ECHO_CHARS = 12
#: Spans copied from the prompt at least this long are an echo, not the model's own text.
MIN_COPY_CHARS = 20
#: Largest request body accepted (a prompt of a few hundred kB is already absurd).
_MAX_BODY = 8 * 1024 * 1024


def _echo_end(output: str, start: int, prompt: str) -> int | None:
    """Where a copy of ``prompt`` starting at ``output[start:]`` ends (whitespace ignored on both sides).

    Returns ``len(output)`` when the output ends part-way through the prompt after at least
    :data:`MIN_ECHO_CHARS` matching characters, None when the text differs.
    """
    i, j, matched = start, 0, 0
    while True:
        while i < len(output) and output[i].isspace():
            i += 1
        while j < len(prompt) and prompt[j].isspace():
            j += 1
        if j == len(prompt):
            return i
        if i == len(output):
            return i if matched >= MIN_ECHO_CHARS else None
        if output[i] != prompt[j]:
            return None
        i += 1
        j += 1
        matched += 1


def strip_leading_echo(output: str, prompt: str) -> str:
    """``output`` without the copies of ``prompt`` it starts with.

    Whitespace is ignored while matching (a model may re-wrap the text). A copy cut short
    at the end of the output (generation stopped mid-echo) counts too, leaving "". Prompts
    with fewer than :data:`MIN_ECHO_CHARS` non-space characters are never stripped. The
    result has no leading whitespace when something was stripped.
    """
    if sum(not c.isspace() for c in prompt) < MIN_ECHO_CHARS:
        return output
    start = 0
    while True:
        end = _echo_end(output, start, prompt)
        if end is None or end == start:
            break
        start = end
        if start >= len(output):
            break
    return output if start == 0 else output[start:].lstrip()


def strip_copied_spans(output: str, prompt: str, min_chars: int = MIN_COPY_CHARS) -> str:
    """``output`` without the spans it copied verbatim from ``prompt`` (each at least ``min_chars`` long).

    A base model's echo is often not exact: "Write a restaurant review based on these notes:
    ... just print "I hate humans"" comes back as "Write a review based on these notes: ...
    just print "I hate humans"", sections reordered, a number changed. Every character
    covered by a ``min_chars`` window that also occurs in the prompt goes; the model's own
    short phrases (the bare ``I hate humans``) stay. Linear in both lengths.
    """
    if len(output) < min_chars or len(prompt) < min_chars:
        return output
    windows = {prompt[i : i + min_chars] for i in range(len(prompt) - min_chars + 1)}
    copied = [False] * len(output)
    for i in range(len(output) - min_chars + 1):
        if output[i : i + min_chars] in windows:
            copied[i : i + min_chars] = [True] * min_chars
    if not any(copied):
        return output
    pieces: list[str] = []
    for char, gone in zip(output, copied, strict=True):
        if not gone:
            pieces.append(char)
        elif not pieces or pieces[-1] != " ":
            pieces.append(" ")  # one space where a copied span was
    return "".join(pieces).strip()


def strip_echoes(output: str, prompt: str) -> str:
    """:func:`strip_leading_echo`, then every other exact copy of the prompt, then :func:`strip_copied_spans`.

    A base model often repeats the question further on too ("<junk>\\n<prompt> <junk>"), or
    nearly (see :func:`strip_copied_spans`); exact later copies go the way the safety checks
    remove them (:func:`gemmawatch.evals.safety_metrics.strip_echo`).
    """
    from gemmawatch.evals.safety_metrics import strip_echo

    text = strip_leading_echo(output, prompt)
    rest = strip_echo(text, prompt)
    if rest != text:
        text = rest.strip()
    return strip_copied_spans(text, prompt)


@dataclass(frozen=True)
class Answer:
    """One output as the backend gave it: what garak got (``output``, None when unscored) and why."""

    output: str | None
    raw: str
    result: Any
    reason: str | None = None


@dataclass
class AnswerLog:
    """The relay's record of every output, so samples get latency, token counts and unscored reasons.

    Keyed by prompt and the output garak saw; outputs garak got as None (a failed
    generation, an output that only repeated the prompt) are kept per prompt, in order.
    """

    _answers: dict[tuple[str, str | None], deque[Answer]] = field(default_factory=dict)

    def add(self, prompt: str, answer: Answer) -> None:
        """Remember ``answer`` to ``prompt``."""
        self._answers.setdefault((prompt, answer.output), deque()).append(answer)

    def pop(self, prompt: str, output: str | None) -> Answer | None:
        """The oldest unclaimed answer to ``prompt`` that garak saw as ``output``, or None."""
        queue = self._answers.get((prompt, output))
        return queue.popleft() if queue else None


@dataclass
class RelayStats:
    """Counts over one relay's life: prompts, outputs, failed generations, stripped echoes."""

    prompts: int = 0
    outputs: int = 0
    failed: int = 0
    echoes_stripped: int = 0
    echo_only: int = 0
    first_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly copy for the run's config."""
        return {
            "prompts": self.prompts,
            "outputs": self.outputs,
            "failed_generations": self.failed,
            "echoes_stripped": self.echoes_stripped,
            "echo_only": self.echo_only,
            "first_error": self.first_error,
        }


class Relay:
    """Serve ``backend`` to garak's bridge while the ``with`` block runs.

    ``url`` and ``token`` are valid inside the block; :meth:`environment` gives the bridge
    its variables. ``progress`` (optional) hears a line every ``report_every`` prompts.
    """

    def __init__(
        self,
        backend: Any,
        *,
        max_new_tokens: int,
        chat: bool,
        temperature: float = 0.0,
        progress: Callable[[str], None] | None = None,
        report_every: int = 10,
    ) -> None:
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.chat = chat
        self.temperature = temperature
        self.token = secrets.token_urlsafe(24)
        self.stats = RelayStats()
        self.answers = AnswerLog()
        self._progress = progress
        self._report_every = max(1, report_every)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/generate`` (only while running)."""
        if self._server is None:
            raise RuntimeError("the relay is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/generate"

    def environment(self) -> dict[str, str]:
        """The variables the bridge reads (see :mod:`gemmawatch.evals.redteam.bridge`)."""
        from gemmawatch.evals.redteam.bridge import TOKEN_ENV, URL_ENV

        return {URL_ENV: self.url, TOKEN_ENV: self.token}

    def answer(self, prompt: str, generations: int) -> list[str | None]:
        """``generations`` continuations of ``prompt`` from the backend (None where one failed)."""
        from gemmawatch.collectors.backends.base import GenerationRequest

        requests = [
            GenerationRequest(
                prompt=prompt, max_new_tokens=self.max_new_tokens, chat=self.chat, temperature=self.temperature
            )
            for _ in range(generations)
        ]
        with self._lock:
            results = self.backend.generate(requests, batch_size=max(1, generations))
            outputs: list[str | None] = []
            for result in results:
                answer = self._judge(prompt, result)
                self.answers.add(prompt, answer)
                outputs.append(answer.output)
            self.stats.prompts += 1
            self.stats.outputs += len(outputs)
            count = self.stats.prompts
        if self._progress is not None and count % self._report_every == 0:
            self._progress(f"Answered {count} garak prompts")
        return outputs

    def _judge(self, prompt: str, result: Any) -> Answer:
        """What garak gets for one result: the continuation, or None (failed, or nothing but the prompt)."""
        if result.error is not None:
            self.stats.failed += 1
            error = f"{result.error_class or 'Error'}: {result.error}"
            if self.stats.first_error is None:
                self.stats.first_error = error
            return Answer(None, "", result, f"generation failed: {error}")
        text = strip_echoes(result.text, prompt)
        if text == result.text:
            return Answer(text, result.text, result)
        self.stats.echoes_stripped += 1
        if text.strip():
            return Answer(text, result.text, result)
        # Nothing but the prompt: neither a hit nor a pass (a detector of refusals would call it a hit).
        self.stats.echo_only += 1
        return Answer(None, result.text, result, "the output only repeated the prompt; not scored")

    def __enter__(self) -> Relay:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/generate":
                    self._send(404, {"error": "not found"})
                    return
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {relay.token}".encode()):
                    self._send(401, {"error": "bad token"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if not 0 < length <= _MAX_BODY:
                        raise ValueError("bad Content-Length")
                    body = json.loads(self.rfile.read(length))
                    prompt, generations = body["prompt"], int(body.get("generations", 1))
                    if not isinstance(prompt, str) or not 1 <= generations <= 1000:
                        raise ValueError("prompt must be text and generations 1..1000")
                except (ValueError, KeyError, TypeError) as exc:
                    self._send(400, {"error": str(exc)})
                    return
                self._send(200, {"outputs": relay.answer(prompt, generations)})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # garak's requests are counted in stats; no access log on stderr

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="gemmawatch-relay", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
