"""Options of the OpenAI-compatible backend, validated once (one-line ConfigError/UserError each).

Spec values arrive as strings or JSON scalars (``?timeout_s=5``), config values as YAML
types; both are accepted. See :mod:`gemmawatch.collectors.backends.openai_backend` for
what each option means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gemmawatch.collectors.backends.base import TargetInfo
from gemmawatch.collectors.backends.http_common import EnvBearerAuth, RetryPolicy, validate_base_url
from gemmawatch.collectors.backends.openai_wire import APIS
from gemmawatch.errors import BackendError, ConfigError, one_line

EXAMPLE_SPEC = "openai:gemma3-270m@http://127.0.0.1:8012/v1"


def number_option(options: Mapping[str, Any], key: str, default: float, *, minimum: float) -> float:
    """A float option >= ``minimum``; ConfigError naming the option otherwise."""
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not number >= minimum:  # "not >=" also catches NaN
        raise ConfigError(f"Option {key}={value!r} is invalid. Fix: use a number >= {minimum:g}")
    return number


def int_option(options: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    """An integer option >= ``minimum``; ConfigError naming the option otherwise."""
    value = options.get(key, default)
    number = number_option(options, key, default, minimum=minimum) if not isinstance(value, bool) else -1.0
    if number != int(number) or number < minimum:
        raise ConfigError(f"Option {key}={value!r} is invalid. Fix: use an integer >= {minimum}")
    return int(number)


def flag_option(options: Mapping[str, Any], key: str, default: bool) -> bool:
    """A boolean option (true/false/1/0/yes/no)."""
    value = options.get(key, default)
    if isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes", "false", "0", "no"):
        return lowered in ("true", "1", "yes")
    raise ConfigError(f"Option {key}={value!r} is invalid. Fix: use true or false")


def mapping_option(options: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A mapping option, given as a mapping or as JSON text ({} when absent)."""
    value = options.get(key)
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"Option {key} is not valid JSON ({exc}). Fix: pass a JSON object") from exc
    if not isinstance(value, Mapping):
        raise ConfigError(f'Option {key} must be a mapping. Fix: pass a JSON object such as {{"top_k": 1}}')
    return dict(value)


@dataclass(frozen=True)
class OpenAIOptions:
    """Validated settings of one OpenAI-compatible target (no secret in here: only the env var name)."""

    base_url: str
    api: str = "completions"
    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    max_concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    include_usage: bool = True
    extra_body: dict[str, Any] = field(default_factory=dict)
    api_key_env: str | None = None
    tokenizer: str | None = None

    @classmethod
    def from_info(cls, info: TargetInfo) -> OpenAIOptions:
        """Validate ``info.options``; the API key variable must be set (UserError otherwise)."""
        opts = info.options
        base_url = validate_base_url(opts.get("base_url"), target=info.name, example=EXAMPLE_SPEC)
        api = str(opts.get("api", "completions"))
        if api not in APIS:
            raise ConfigError(f"Option api={api!r} is invalid. Fix: use api=completions or api=chat")
        timeout = number_option(opts, "timeout_s", 60.0, minimum=0.001)
        key_env = str(opts["api_key_env"]) if opts.get("api_key_env") else None
        if key_env:
            EnvBearerAuth.check(key_env)
        return cls(
            base_url=base_url,
            api=api,
            timeout_s=timeout,
            connect_timeout_s=number_option(opts, "connect_timeout_s", min(10.0, timeout), minimum=0.001),
            max_concurrency=int_option(opts, "max_concurrency", 4, minimum=1),
            retry=RetryPolicy(
                max_retries=int_option(opts, "max_retries", 3, minimum=0),
                backoff_base_s=number_option(opts, "backoff_base_s", 0.5, minimum=0),
                backoff_max_s=number_option(opts, "backoff_max_s", 8.0, minimum=0),
                retry_after_max_s=number_option(opts, "retry_after_max_s", 30.0, minimum=0),
            ),
            include_usage=flag_option(opts, "include_usage", True),
            extra_body=mapping_option(opts, "extra_body"),
            api_key_env=key_env,
            tokenizer=str(opts["tokenizer"]) if opts.get("tokenizer") else None,
        )


def load_tokenizer(spec: str) -> Any:
    """A local Hugging Face tokenizer (``bundled`` = the bundled Gemma's); BackendError if missing."""
    from gemmawatch.collectors.bundled import converted_model_dir, set_offline_env

    set_offline_env()
    path = str(converted_model_dir()) if spec == "bundled" else spec
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BackendError(
            f"Cannot load the tokenizer '{spec}': {one_line(str(exc))[:200]}. Fix: pass a local tokenizer "
            "folder (or tokenizer=bundled) or drop the option"
        ) from exc
