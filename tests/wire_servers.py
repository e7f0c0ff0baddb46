"""Local HTTP servers that speak Ollama's and Google Gemini's documented wire formats.

Neither Ollama nor Google's API can run in CI, so the backends' real SDK code paths
(``ollama.Client``, ``google.genai.Client``) are exercised against these stdlib servers
bound to 127.0.0.1 on a free port. They follow the public API references:

* Ollama (https://github.com/ollama/ollama/blob/main/docs/api.md): ``POST /api/show``,
  ``/api/generate``, ``/api/chat`` (NDJSON streams, final line ``done: true`` with
  ``prompt_eval_count``, ``eval_count`` and nanosecond durations), ``GET /api/ps``,
  ``/api/tags``; errors are ``{"error": "..."}`` with the HTTP status.
* Gemini (https://ai.google.dev/api/generate-content): ``GET /{v}/models/{m}``,
  ``POST /{v}/models/{m}:streamGenerateContent?alt=sse`` (SSE ``data:`` events) and
  ``:generateContent``; errors are ``{"error": {"code", "message", "status"}}``.

Replies and faults are scripted per test (see ``wire_base.WireServer``); every request
is recorded in ``requests`` so tests can assert on the body the SDK sent.
"""

from __future__ import annotations

import json
from typing import Any

from wire_base import Handler, Recorded, WireServer

__all__ = ["GEMMA_DIGEST", "GEMMA_VRAM", "GeminiServer", "OllamaServer", "Recorded", "WireServer"]

GEMMA_SHOW = {
    "modelfile": "FROM gemma3:4b",
    "parameters": 'stop "<end_of_turn>"\ntemperature 1',
    "template": "{{ .Prompt }}",
    "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "gemma3",
        "families": ["gemma3"],
        "parameter_size": "4.3B",
        "quantization_level": "Q4_K_M",
    },
    "model_info": {"general.architecture": "gemma3", "gemma3.context_length": 131072},
    "capabilities": ["completion", "vision"],
    "modified_at": "2025-03-12T10:00:00.000000000Z",
}
GEMMA_DIGEST = "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a"
GEMMA_SIZE = 3_338_801_804
GEMMA_VRAM = 5_020_000_000



# --------------------------------------------------------------------------- Ollama


class OllamaHandler(Handler):
    """Ollama's native API (docs/api.md)."""

    def do_GET(self) -> None:
        req = self._read()
        srv: OllamaServer = self.server  # type: ignore[assignment]
        if req.path == "/api/tags":
            self.send_json(200, {"models": [srv.model_entry(name) for name in srv.models]})
        elif req.path == "/api/ps":
            entries = [{**srv.model_entry(n), "size_vram": GEMMA_VRAM, "expires_at": "2099-01-01T00:00:00Z"}
                       for n in sorted(srv.loaded)]
            self.send_json(200, {"models": entries})
        else:
            self.send_json(404, {"error": "404 page not found"})

    def do_POST(self) -> None:
        req = self._read()
        srv: OllamaServer = self.server  # type: ignore[assignment]
        body = req.body if isinstance(req.body, dict) else {}
        model = srv.canonical(str(body.get("model", "")))
        if req.path == "/api/show":
            if model not in srv.models:
                self.send_json(404, {"error": f"model '{body.get('model')}' not found"})
            else:
                self.send_json(200, srv.models[model])
        elif req.path in ("/api/generate", "/api/chat"):
            self._generate(req.path == "/api/chat", body, model)
        else:
            self.send_json(404, {"error": "404 page not found"})

    def _generate(self, chat: bool, body: dict[str, Any], model: str) -> None:
        srv: OllamaServer = self.server  # type: ignore[assignment]
        fault = srv.next_fault()
        status = self.error_fault(fault)
        if status is not None or model not in srv.models:
            status = 404 if status is None else status
            message = f"model '{body.get('model')}' not found" if status == 404 else f"fault {fault}"
            self.send_json(status, {"error": message})
            return
        srv.loaded.add(model)
        options = body.get("options") or {}
        pieces, reason = srv.script(list(options.get("stop") or []), options.get("num_predict"))
        prompt = json.dumps(body.get("messages")) if chat else str(body.get("prompt", ""))

        def line(text: str, done: bool) -> dict[str, Any]:
            out: dict[str, Any] = {"model": body.get("model"), "created_at": "2025-01-01T00:00:00Z", "done": done}
            if chat:
                out["message"] = {"role": "assistant", "content": text}
            else:
                out["response"] = text
            return out

        self.start_stream("application/x-ndjson")
        self.pause(srv.first_delay_s)
        for k, piece in enumerate(pieces):
            if k:
                self.pause(srv.chunk_delay_s)
            if fault == "stream_cut" and k == max(1, len(pieces) // 2):
                self.cut()
                return
            self.write_chunk((json.dumps(line(piece, False)) + "\n").encode())
        if fault == "invalid_json":
            self.write_chunk(b'{"done": tru\n')
        else:
            final = line("", True) | {
                "done_reason": reason,
                "total_duration": 5_000_000,
                "load_duration": 1_000_000,
                "prompt_eval_count": len(prompt.split()) + 1,
                "prompt_eval_duration": 1_000_000,
                "eval_count": len(pieces) * srv.tokens_per_chunk,
                "eval_duration": 3_000_000,
            }
            self.write_chunk((json.dumps(final) + "\n").encode())
        self.end_stream()


class OllamaServer(WireServer):
    """An Ollama look-alike serving ``gemma3:4b`` (``models`` maps name -> /api/show payload)."""

    def __init__(self) -> None:
        super().__init__(OllamaHandler)
        self.models: dict[str, dict[str, Any]] = {"gemma3:4b": GEMMA_SHOW}
        self.loaded: set[str] = set()

    @staticmethod
    def canonical(name: str) -> str:
        """Ollama's implicit ``:latest`` tag."""
        return name if ":" in name or not name else f"{name}:latest"

    def model_entry(self, name: str) -> dict[str, Any]:
        """An /api/tags (and /api/ps) entry for ``name``."""
        return {"name": name, "model": name, "modified_at": "2025-03-12T10:00:00Z", "size": GEMMA_SIZE,
                "digest": GEMMA_DIGEST, "details": self.models[name]["details"]}


# --------------------------------------------------------------------------- Gemini


def google_error(code: int, message: str) -> dict[str, Any]:
    """Google's error envelope (https://cloud.google.com/apis/design/errors)."""
    statuses = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
    status = statuses.get(code, "UNKNOWN")
    return {"error": {"code": code, "message": message, "status": status}}


class GeminiHandler(Handler):
    """The Gemini API's models.get, generateContent and streamGenerateContent (SSE)."""

    def _route(self, req: Recorded) -> tuple[str, str] | None:
        """(model, method) from ``/{version}/models/{model}[:{method}]``; None after replying with an error."""
        srv: GeminiServer = self.server  # type: ignore[assignment]
        if srv.api_key is not None and req.headers.get("x-goog-api-key") != srv.api_key:
            # Like Google: say the key is wrong, never repeat it.
            self.send_json(400, google_error(400, "API key not valid. Please pass a valid API key."))
            return None
        parts = req.path.strip("/").split("/")
        if len(parts) != 3 or parts[1] != "models":
            self.send_json(404, google_error(404, f"Unknown path {req.path}"))
            return None
        model, _, method = parts[2].partition(":")
        if model not in srv.models:
            self.send_json(404, google_error(404, f"models/{model} is not found for API version {parts[0]}"))
            return None
        return model, method

    def do_GET(self) -> None:
        req = self._read()
        route = self._route(req)
        if route is not None:
            self.send_json(200, self.server.models[route[0]])  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        req = self._read()
        route = self._route(req)
        if route is None:
            return
        if route[1] not in ("streamGenerateContent", "generateContent"):
            self.send_json(404, google_error(404, f"Unknown method {route[1]}"))
            return
        srv: GeminiServer = self.server  # type: ignore[assignment]
        fault = srv.next_fault()
        status = self.error_fault(fault)
        if status is not None:
            self.send_json(status, google_error(status, f"fault {fault}"))
            return
        body = req.body if isinstance(req.body, dict) else {}
        config = body.get("generationConfig") or {}
        pieces, reason = srv.script(list(config.get("stopSequences") or []), config.get("maxOutputTokens"))
        words = sum(len(str(p.get("text", "")).split()) for c in body.get("contents", []) for p in c.get("parts", []))
        usage = {"promptTokenCount": words + 1}
        finish = "STOP" if reason == "stop" else "MAX_TOKENS"
        done = usage | {"candidatesTokenCount": len(pieces) * srv.tokens_per_chunk}
        done["totalTokenCount"] = done["promptTokenCount"] + done["candidatesTokenCount"]
        if route[1] == "generateContent":
            self.pause(srv.first_delay_s)
            self.send_json(200, srv.event("".join(pieces), finish, done))
            return
        self.start_stream("text/event-stream")
        self.pause(srv.first_delay_s)
        for k, piece in enumerate(pieces):
            if k:
                self.pause(srv.chunk_delay_s)
            if fault == "stream_cut" and k == max(1, len(pieces) // 2):
                self.cut()
                return
            last = k == len(pieces) - 1
            event = srv.event(piece, finish if last else None, done if last else usage)
            self.write_chunk(f"data: {json.dumps(event)}\r\n\r\n".encode())
        if not pieces:  # e.g. maxOutputTokens 0 or an immediate stop string: the finish event alone
            self.write_chunk(f"data: {json.dumps(srv.event('', finish, done))}\r\n\r\n".encode())
        if fault == "invalid_json":
            self.write_chunk(b'data: {"candidates": [\r\n\r\n')
        self.end_stream()


class GeminiServer(WireServer):
    """A Gemini API look-alike serving ``gemma-3-27b-it``; requires ``api_key`` in ``x-goog-api-key``."""

    def __init__(self, api_key: str | None = "test-key-not-secret") -> None:
        super().__init__(GeminiHandler)
        self.api_key = api_key
        self.models: dict[str, dict[str, Any]] = {
            "gemma-3-27b-it": {
                "name": "models/gemma-3-27b-it",
                "version": "001",
                "displayName": "Gemma 3 27B",
                "inputTokenLimit": 131072,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
        }

    @staticmethod
    def event(text: str, finish: str | None, usage: dict[str, int]) -> dict[str, Any]:
        """One GenerateContentResponse."""
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemma-3-27b-it"}
