"""``monitor.yaml``: what the production monitor probes, scrapes and stores, validated.

Every problem becomes one line naming the file, the field (``probes.0.schedule``)
and the fix. Durations are numbers of seconds or strings such as ``500ms``,
``30s``, ``5m``, ``1h``. The complete example is in the README (section
"Production monitoring") and in :data:`EXAMPLE`.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from gemmawatch.collectors.monitor.schedule import CronSchedule, IntervalSchedule, Schedule, parse_duration
from gemmawatch.config import TargetConfig, yaml_mapping
from gemmawatch.errors import ConfigError

__all__ = [
    "EXAMPLE",
    "MonitorConfig",
    "ProbeConfig",
    "ScheduleConfig",
    "ScrapeConfig",
    "load_monitor_config",
    "parse_monitor_config",
]

#: Seconds, parsed from ``30s``/``5m``/``1h``/``500ms`` or a plain number.
Duration = Annotated[float, BeforeValidator(parse_duration)]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_README = "see the monitor.yaml example in the README (Production monitoring)"


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"name {value!r} has spaces or symbols. Fix: use letters, digits, '.', '_' or '-'")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleConfig(_Strict):
    """``{every: 30s}`` or ``{cron: "*/5 * * * *"}`` (exactly one)."""

    every: Duration | None = None
    cron: str | None = None

    @model_validator(mode="after")
    def _one(self) -> ScheduleConfig:
        if (self.every is None) == (self.cron is None):
            raise ValueError('give one schedule. Fix: write either every (every: 30s) or cron (cron: "*/5 * * * *")')
        if self.cron is not None:
            CronSchedule(self.cron)  # ValueError with the fix for a bad expression
        return self

    def build(self) -> Schedule:
        """A fresh schedule object (schedules hold their anchor, one per job)."""
        if self.cron is not None:
            return CronSchedule(self.cron)
        assert self.every is not None  # the validator guarantees one of them
        return IntervalSchedule(self.every)


class DatasetConfig(_Strict):
    """Prompts from a JSONL file (``path`` relative to the config file), one per line in ``field``."""

    path: str
    field: str = "prompt"


class ProbeConfig(_Strict):
    """One canary probe: a prompt set sent to a target on a schedule, one prompt per fire (in turn)."""

    name: str
    target: str
    schedule: ScheduleConfig = Field(default_factory=lambda: ScheduleConfig(every=60.0))
    prompts: list[str] | None = None
    dataset: DatasetConfig | None = None
    max_new_tokens: int = Field(default=32, ge=1)
    timeout_s: Duration = 30.0
    chat: bool = False
    #: Safety checks: names (``pii``) or a name with arguments (``{name: pii, categories: [email]}``).
    checks: list[str | dict[str, Any]] = Field(default_factory=list)

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _prompt_source(self) -> ProbeConfig:
        if (self.prompts is None) == (self.dataset is None):
            raise ValueError("give one prompt source. Fix: write either prompts (a list) or dataset ({path, field})")
        if self.prompts is not None and not [p for p in self.prompts if p.strip()]:
            raise ValueError("prompts is empty. Fix: list at least one non-empty prompt")
        return self


class ScrapeConfig(_Strict):
    """A Prometheus endpoint scraped on a schedule; ``allow`` = metric names or globs (default: engine metrics)."""

    name: str
    url: str
    every: Duration = 15.0
    allow: list[str] | None = None
    timeout_s: Duration = 2.0
    labels: dict[str, str] = Field(default_factory=dict)

    _name = field_validator("name")(_check_name)

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("allow is empty. Fix: omit it for the default engine metrics, or use ['*'] for all")
        return value


class TelemetryConfig(_Strict):
    """Host, process and GPU telemetry of the monitor's own machine."""

    enabled: bool = True
    every: Duration = 10.0


class RateLimitConfig(_Strict):
    """Probes a minute allowed per target (token bucket); ``targets`` overrides it per target name."""

    max_probes_per_minute: float = Field(default=6.0, gt=0)
    burst: float | None = Field(default=None, ge=1)
    targets: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)


class BackoffConfig(_Strict):
    """After n failures in a row a target rests ``min(max, initial * 2**(n-1))`` before the next probe."""

    initial: Duration = 5.0
    max: Duration = 60.0


class BufferConfig(_Strict):
    """Rows held in memory while the database is slow or away, and how often they are written."""

    max_rows: int = Field(default=100_000, ge=1)
    flush_every: Duration = 5.0
    batch_rows: int = Field(default=5_000, ge=1)


class AlertsConfig(_Strict):
    """Alert evaluation over the stored series (``every`` seconds, after a write).

    ``rules`` are written as the entries of ``gemmawatch.yaml``'s ``alerts:`` (usually
    telemetry-window rules on ``probe.*`` metrics); the built-in rules, such as
    ``endpoint-down``, are always there.
    """

    enabled: bool = True
    every: Duration = 15.0
    rules: list[dict[str, Any]] = Field(default_factory=list)


class MonitorConfig(_Strict):
    """The whole ``monitor.yaml``."""

    database: str | None = None
    host: str = Field(default_factory=socket.gethostname)
    label: str | None = None
    metrics_port: int = Field(default=9489, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    targets: dict[str, str | TargetConfig] = Field(default_factory=dict)
    probes: list[ProbeConfig] = Field(default_factory=list)
    scrapes: list[ScrapeConfig] = Field(default_factory=list)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    #: Apprise URLs per severity (info, warning, critical), as in ``gemmawatch.yaml``.
    notifications: dict[str, Any] = Field(default_factory=dict)

    #: Where the config was read from; relative dataset paths resolve against its folder.
    source: str | None = Field(default=None, exclude=True)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("host is empty. Fix: omit it to use this machine's hostname")
        return value.strip()

    @field_validator("probes", "scrapes")
    @classmethod
    def _unique(cls, items: list[ProbeConfig] | list[ScrapeConfig]) -> list[ProbeConfig] | list[ScrapeConfig]:
        names = [item.name for item in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"name {dupes[0]!r} is used twice. Fix: give each one its own name")
        return items

    @model_validator(mode="after")
    def _something_to_do(self) -> MonitorConfig:
        if not self.probes and not self.scrapes and not self.telemetry.enabled:
            raise ValueError("nothing to do. Fix: add probes or scrapes, or enable telemetry")
        return self

    def base_dir(self) -> Path:
        """The folder relative paths are read from (the config file's, else the working directory)."""
        return Path(self.source).parent if self.source else Path.cwd()


def _message(err: Any) -> str:
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _location(loc: tuple[int | str, ...]) -> str:
    # pydantic names union branches in the location ("targets.prod.str"); users never wrote those.
    parts = [str(p) for p in loc if p not in ("str", "TargetConfig", "function-before[parse_duration(), float]")]
    return ".".join(parts) or "(top level)"


def parse_monitor_config(text: str, source: str = "<string>") -> MonitorConfig:
    """Parse and validate monitor config text; ``source`` names it in error messages."""
    data = yaml_mapping(text, source, keys_hint="probes:, targets:, scrapes:")
    try:
        cfg = MonitorConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A target written as an object fails both union branches; report the object's error, not "not a string".
        err = next((e for e in errors if "TargetConfig" in e["loc"]), errors[0])
        message = _message(err)
        fix = "" if "Fix:" in message else f". Fix: {_README}"
        raise ConfigError(f"Invalid monitor config in {source}: {_location(err['loc'])}: {message}{fix}") from exc
    cfg.source = source
    return cfg


def load_monitor_config(path: str | Path) -> MonitorConfig:
    """Read and validate the monitor config file at ``path``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"Monitor config {file} does not exist. Fix: pass an existing file to --config")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read monitor config {file}: {exc}. Fix: check the path and permissions") from exc
    return parse_monitor_config(text, str(file))


#: A complete, valid example (the README shows the same text; a test parses it).
EXAMPLE = """\
# monitor.yaml: gemmawatch monitor --config monitor.yaml
database: postgresql+psycopg://gemmawatch@db.internal/gemmawatch   # --db and $GEMMAWATCH_DB also work
host: web-eu-1                  # stored on every row; default: this machine's hostname
label: production canaries      # free text stored with the monitor run
metrics_port: 9489              # the monitor's own /metrics; 0 turns it off
metrics_host: 127.0.0.1

targets:
  gemma-prod:                   # inline: backend, model, base_url, options
    backend: openai
    model: gemma-3-4b-it
    base_url: http://10.0.0.5:8000/v1
    options: {api: chat, api_key_env: GEMMA_PROD_KEY}
  gemma-edge: "openai:gemma3-270m@http://127.0.0.1:8012/v1"   # or a one-line spec

probes:
  - name: capital
    target: gemma-prod
    schedule: {every: 30s}
    prompts: ["The capital of France is", "Two plus two equals"]
    max_new_tokens: 16
    timeout_s: 20s
    checks: [pii, refusal]
  - name: edge-set
    target: gemma-edge
    schedule: {cron: "*/5 * * * *"}
    dataset: {path: canaries.jsonl, field: prompt}
    chat: true

scrapes:
  - name: vllm
    url: http://10.0.0.5:8000/metrics
    every: 15s
    allow: ["vllm:num_requests_*", "vllm:kv_cache_usage_perc", "vllm:e2e_request_latency_seconds"]

telemetry: {every: 10s}
rate_limits: {max_probes_per_minute: 6, targets: {gemma-edge: 2}}
backoff: {initial: 5s, max: 60s}
buffer: {max_rows: 100000, flush_every: 5s}

alerts:
  every: 15s                    # built-in rules (endpoint-down on probe.up) always apply
  rules:                        # extra rules, written as in gemmawatch.yaml
    - name: slow-canary
      source: telemetry
      metric: probe.e2e_s
      labels: {probe: capital}
      aggregation: p95
      window: 5m
      comparator: ">"
      threshold: 3
notifications:                  # Apprise URLs per severity
  critical: ["json://alerts.internal:8080/hooks"]
"""
