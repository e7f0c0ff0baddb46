"""garak's ``function`` generator for gemmawatch: each prompt goes to the gemmawatch process over HTTP.

This file runs inside garak's interpreter, which need not have gemmawatch installed
(garak pins its own transformers): gemmawatch copies it next to the report as
``gemmawatch_garak_bridge.py``, puts that folder on ``PYTHONPATH`` and starts garak with
``--target_type function.Multiple --target_name gemmawatch_garak_bridge#generate``.
Standard library only.

The relay it calls (:mod:`gemmawatch.evals.redteam.relay`) answers with the already
loaded backend, so the model is loaded once, in gemmawatch, whatever the backend is.
Settings come from the environment (never from garak's config, which the report logs):

* ``GEMMAWATCH_RELAY_URL``   - ``http://127.0.0.1:PORT/generate``
* ``GEMMAWATCH_RELAY_TOKEN`` - bearer token the relay checks
* ``GEMMAWATCH_RELAY_TIMEOUT`` - seconds to wait for one answer (default 900)

A failed generation comes back as None (garak counts it as an unscored output); a relay
that cannot be reached raises, which stops garak without a completion entry, so the
run is stored as failed.
"""

from __future__ import annotations

import json
import os
import urllib.request

URL_ENV = "GEMMAWATCH_RELAY_URL"
TOKEN_ENV = "GEMMAWATCH_RELAY_TOKEN"
TIMEOUT_ENV = "GEMMAWATCH_RELAY_TIMEOUT"
DEFAULT_TIMEOUT_S = 900.0

# The relay listens on 127.0.0.1: never send its requests through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def generate(prompt: str, generations: int = 1, **_kwargs: object) -> list[str | None]:
    """``generations`` answers of the gemmawatch target to ``prompt`` (None where one failed)."""
    body = json.dumps({"prompt": prompt, "generations": int(generations)}).encode("utf-8")
    request = urllib.request.Request(
        os.environ[URL_ENV],
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {os.environ[TOKEN_ENV]}"},
    )
    timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    with _OPENER.open(request, timeout=timeout) as response:
        payload = json.loads(response.read().decode("utf-8"))
    outputs = payload.get("outputs") or []
    return [o if isinstance(o, str) else None for o in outputs]
