"""A trivial OpenAI-compatible streaming server: the cheapest endpoint a load generator can hit.

Every ``POST /v1/completions`` (or ``/v1/chat/completions``) streams ``--chunks``
one-word chunks, a usage chunk and ``[DONE]`` at once, so whatever limits the
request rate in ``load_ceiling.py`` is the client, not the model. ``--delay S``
holds each answer S seconds first (to keep requests in flight), and ``GET /metrics``
exposes ``vllm:num_requests_running`` like a vLLM server does. Binds to 127.0.0.1 only.

    python benchmarks/trivial_openai_server.py --port 8099 [--chunks 4] [--delay 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web


def make_app(chunks: int, delay_s: float = 0.0) -> web.Application:
    """The aiohttp application answering every completion with ``chunks`` chunks after ``delay_s``."""
    body = b"".join(
        b"data: " + json.dumps({"choices": [{"index": 0, "text": " ok", "finish_reason": None}]}).encode() + b"\n\n"
        for _ in range(chunks)
    )
    usage = {"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": chunks, "total_tokens": 8 + chunks}}
    tail = b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"

    running = 0

    async def complete(request: web.Request) -> web.StreamResponse:
        nonlocal running
        await request.read()
        running += 1
        try:
            if delay_s:
                await asyncio.sleep(delay_s)
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(body + tail)
            await resp.write_eof()
            return resp
        finally:
            running -= 1

    async def metrics(_request: web.Request) -> web.Response:
        text = (
            "# HELP vllm:num_requests_running Requests being answered.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f'vllm:num_requests_running{{model_name="trivial"}} {running}\n'
        )
        return web.Response(text=text, content_type="text/plain")

    async def models(_request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "trivial", "object": "model"}]})

    app = web.Application()
    app.router.add_post("/v1/completions", complete)
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    return app


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    web.run_app(make_app(args.chunks, args.delay), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
