"""lm-eval on an OpenAI-compatible target.

* ``api=completions`` (default): lm-eval's own ``local-completions`` class
  (``LocalCompletionsAPI``), pointed at ``{base_url}/completions`` with the target's
  model name, ``tokenized_requests=False`` (prompts go as text, the server tokenizes
  and adds ``<bos>`` once), ``num_concurrent=max_concurrency`` and lm-eval's own retries.
  Each request carries one prompt (``batch_size=1``): llama.cpp's server rejects prompt
  lists. Generation tasks always work. Loglikelihood (multiple-choice) tasks need the
  server to echo prompt logprobs (llama.cpp server, vLLM; not Ollama, TGI or
  ``transformers serve``) *and* the ``tokenizer`` option (lm-eval splits context and
  continuation by token count).
* ``api=chat``: gemmawatch's generic :class:`~gemmawatch.evals.lm_eval_adapter.BackendLM`
  over this backend. lm-eval's ``local-chat-completions`` only takes prompts that lm-eval
  rendered as JSON messages (``apply_chat_template=True``), which gemmawatch's runner does
  not use so scores stay comparable with the other backends; BackendLM sends each prompt as
  one user message, streams it (TTFT recorded), and has no loglikelihood on chat.

The API key stays in its environment variable: the LM reads it per request, and a log
filter scrubs it from lm-eval's own request-failure messages (aiohttp's error repr
includes the request headers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lm_eval.models.openai_completions import LocalCompletionsAPI

from gemmawatch.errors import BackendError, GemmawatchError, one_line

if TYPE_CHECKING:
    from lm_eval.api.model import LM

    from gemmawatch.collectors.backends.openai_backend import OpenAIBackend

__all__ = ["GemmawatchCompletionsLM", "build_lm"]

#: lm-eval's logger for API models (it logs failed requests, sometimes with headers).
_LM_EVAL_API_LOGGER = "lm_eval.models.api_models"


class _RedactEnvKey(logging.Filter):
    """Replace the value of an environment variable with ``***`` in log records."""

    def __init__(self, env_name: str) -> None:
        super().__init__()
        self.env_name = env_name

    def filter(self, record: logging.LogRecord) -> bool:
        key = os.environ.get(self.env_name)
        if key and len(key) >= 4:
            message = record.getMessage()
            if key in message:
                record.msg, record.args = message.replace(key, "***"), None
        return True


def _install_redaction(env_name: str) -> None:
    logger = logging.getLogger(_LM_EVAL_API_LOGGER)
    if not any(isinstance(f, _RedactEnvKey) and f.env_name == env_name for f in logger.filters):
        logger.addFilter(_RedactEnvKey(env_name))


class GemmawatchCompletionsLM(LocalCompletionsAPI):
    """lm-eval's ``local-completions`` with the Bearer key read from ``api_key_env`` per request."""

    def __init__(self, *, api_key_env: str | None = None, **kwargs: Any) -> None:
        self.api_key_env = api_key_env
        super().__init__(**kwargs)

    @property
    def api_key(self) -> str:
        """The key, read now from the environment ('' without ``api_key_env``)."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""

    @property
    def header(self) -> dict[str, str]:
        """Request headers; not cached, so the key is never kept on the object."""
        key = self.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def __repr__(self) -> str:
        return f"GemmawatchCompletionsLM(base_url={self.base_url!r}, model={self.model!r})"

    def _guarded(self, method: Callable[..., Any], requests: list[Any], **kwargs: Any) -> Any:
        """Run an lm-eval request method; failures become one-line BackendErrors without the key.

        The original exception is dropped (``from None``): aiohttp's errors carry the
        request headers, Authorization included.
        """
        try:
            return method(requests, **kwargs)
        except GemmawatchError:
            raise
        except Exception as err:
            detail = one_line(f"{type(err).__name__}: {err}")[:300]
            key = self.api_key
            if key and len(key) >= 4:
                detail = detail.replace(key, "***")
            message = (
                f"lm-eval's requests to {self.base_url} failed after {self.max_retries} attempt(s): {detail}. "
                "Fix: check the server with `gemmawatch targets check`, or raise max_retries/timeout_s"
            )
        raise BackendError(message) from None

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """lm-eval's own generation (see :meth:`_guarded` for failures)."""
        return list(self._guarded(super().generate_until, requests, disable_tqdm=disable_tqdm))

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """lm-eval's own echo+logprobs scoring; needs the ``tokenizer`` option (see the module docstring)."""
        if self.tokenizer is None:
            raise BackendError(
                f"Loglikelihood tasks on {self.base_url} need a local tokenizer to split context and continuation. "
                "Fix: add ?tokenizer=DIR (or tokenizer=bundled) to the target, or run generation tasks only"
            )
        return list(self._guarded(super().loglikelihood, requests, disable_tqdm=disable_tqdm))

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """lm-eval's own rolling scoring (perplexity tasks); same needs as :meth:`loglikelihood`."""
        if self.tokenizer is None:
            raise BackendError(
                f"Perplexity tasks on {self.base_url} need a local tokenizer. Fix: add ?tokenizer=DIR to the target"
            )
        return list(self._guarded(super().loglikelihood_rolling, requests, disable_tqdm=disable_tqdm))


def build_lm(backend: OpenAIBackend, *, batch_size: int = 8) -> LM:
    """The lm-eval LM for ``backend`` (see the module docstring for which class and why)."""
    if backend.api == "chat":
        from gemmawatch.evals.lm_eval_adapter import BackendLM

        return BackendLM(backend, batch_size=batch_size)
    if backend.api_key_env:
        _install_redaction(backend.api_key_env)
    tokenizer = backend.tokenizer
    kwargs: dict[str, Any] = {
        "base_url": f"{backend.base_url}/completions",
        "model": backend.model,
        "tokenized_requests": False,
        "num_concurrent": backend.max_concurrency,
        # tenacity counts attempts, gemmawatch counts retries.
        "max_retries": backend.retry.max_retries + 1,
        "timeout": max(1, round(backend.timeout_s)),
        "batch_size": 1,
        # None here: "huggingface" would make lm-eval load a tokenizer named like the served model.
        "tokenizer_backend": None,
    }
    lm = GemmawatchCompletionsLM(api_key_env=backend.api_key_env, **kwargs)
    if tokenizer is not None:
        # Hand over the tokenizer already loaded (lm-eval would load it again by path).
        lm.tokenizer = tokenizer
        lm.tokenizer_backend = "huggingface"
    else:
        # Without a tokenizer lm-eval's tok_encode returns [text] (one "token" per prompt); hiding it
        # makes gemmawatch's runner store unknown token counts instead of 1. Nothing else needs it on
        # this path (text requests; loglikelihood refuses above).
        lm.tok_encode = None
    return lm
