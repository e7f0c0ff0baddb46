"""``gemmawatch.yaml``: targets, alert rules, notifications and the database, validated.

The file is optional. It is found through ``--config``, then the environment
variable ``GEMMAWATCH_CONFIG``, then ``./gemmawatch.yaml``. Any problem with it
becomes a one-line :class:`~gemmawatch.errors.ConfigError` that names the file,
the place and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from gemmawatch.alerts.config import AnyRule, parse_alert_rules, parse_notifications
from gemmawatch.errors import ConfigError

CONFIG_ENV = "GEMMAWATCH_CONFIG"
DEFAULT_CONFIG_NAME = "gemmawatch.yaml"


class TargetConfig(BaseModel):
    """One named target: which backend serves which model, and how."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    model: str
    revision: str | None = None
    dtype: str | None = None
    quantization: str | None = None
    base_url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


def _source(info: ValidationInfo) -> str:
    context = info.context or {}
    return str(context.get("source") or DEFAULT_CONFIG_NAME)


class GemmawatchConfig(BaseModel):
    """The whole configuration file.

    ``alerts:`` and ``notifications:`` are validated by
    :func:`gemmawatch.alerts.config.parse_alert_rules` and
    :func:`~gemmawatch.alerts.config.parse_notifications` (their errors name
    the rule or severity and the fix).
    """

    model_config = ConfigDict(extra="forbid")

    database: str | None = None
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    alerts: list[AnyRule] = Field(default_factory=list)
    #: Apprise URLs per severity (info, warning, critical), notified for every rule of that severity.
    notifications: dict[str, list[str]] = Field(default_factory=dict)
    #: How stored samples keep prompts and outputs: ``clear`` (as they are), ``redacted`` (personal
    #: data masked) or ``hash`` (SHA-256; salted by ``$GEMMAWATCH_TEXT_SALT`` when set). See
    #: :mod:`gemmawatch.evals.safety.storage_policy`.
    store_text: Literal["clear", "redacted", "hash"] = "clear"

    #: Where the config was read from (None when no file was found).
    source: str | None = None

    @field_validator("alerts", mode="before")
    @classmethod
    def _alert_rules(cls, value: Any, info: ValidationInfo) -> Any:
        return parse_alert_rules(value, source=_source(info))

    @field_validator("notifications", mode="before")
    @classmethod
    def _notification_routes(cls, value: Any, info: ValidationInfo) -> Any:
        return {k: list(v) for k, v in parse_notifications(value, source=_source(info)).items()}


#: The type of one entry of ``alerts:`` (any rule kind).
AlertRuleConfig = AnyRule


def find_config(path: str | Path | None = None) -> Path | None:
    """Return the config path to read, or None when there is none.

    An explicitly named file (argument or environment) must exist; the implicit
    ``./gemmawatch.yaml`` is read only when present.
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(
                f"Config file {p} does not exist. Fix: pass an existing file to --config (or unset {CONFIG_ENV})"
            )
        return p
    implicit = Path.cwd() / DEFAULT_CONFIG_NAME
    return implicit if implicit.is_file() else None


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def yaml_mapping(text: str, source: str, *, keys_hint: str) -> dict[str, Any]:
    """Config text as a mapping (empty text = ``{}``); malformed YAML or another top-level type is a ConfigError.

    ``keys_hint`` names example top-level keys for the fix, e.g. ``"targets:, alerts:"``.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"Malformed YAML in {source}{where}: {problem}. Fix: correct the YAML syntax") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} must be a YAML mapping, got a {type(data).__name__}. Fix: use top-level keys such as {keys_hint}"
        )
    return data


def parse_config(text: str, source: str = "<string>") -> GemmawatchConfig:
    """Parse and validate config text; ``source`` names it in error messages."""
    data = yaml_mapping(text, source, keys_hint="targets:, alerts:, notifications:, database:")
    try:
        cfg = GemmawatchConfig.model_validate(data, context={"source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(
            f"Invalid config in {source}: {_location(err['loc'])}: {err['msg']}. "
            "Fix: see the Configuration section of the README"
        ) from exc
    cfg.source = source
    return cfg


def load_config(path: str | Path | None = None) -> GemmawatchConfig:
    """Find and load the configuration; an absent implicit file gives the defaults."""
    found = find_config(path)
    if found is None:
        return GemmawatchConfig()
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {found}: {exc}. Fix: check the path and permissions") from exc
    return parse_config(text, str(found))
