"""monitor.yaml validation: the README example parses; each mistake is one line naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemmawatch.collectors.monitor.config import EXAMPLE, load_monitor_config, parse_monitor_config
from gemmawatch.collectors.monitor.schedule import CronSchedule, IntervalSchedule
from gemmawatch.errors import ConfigError

PROBE = "{name: a, target: 'openai:m@http://127.0.0.1:1/v1', prompts: [hi]"


def test_readme_example_parses() -> None:
    cfg = parse_monitor_config(EXAMPLE, "monitor.yaml")
    assert cfg.host == "web-eu-1" and cfg.metrics_port == 9489
    capital, nightly = cfg.probes
    assert isinstance(capital.schedule.build(), IntervalSchedule) and capital.schedule.every == 30
    assert capital.timeout_s == 20 and capital.checks == ["pii", "refusal"]
    assert isinstance(nightly.schedule.build(), CronSchedule) and nightly.dataset is not None
    assert cfg.scrapes[0].allow and cfg.rate_limits.targets == {"gemma-edge": 2}
    assert cfg.targets["gemma-edge"] == "openai:gemma3-270m@http://127.0.0.1:8012/v1"


def test_defaults() -> None:
    cfg = parse_monitor_config(f"probes: [{PROBE}}}]")
    assert cfg.host  # this machine's hostname
    assert cfg.metrics_host == "127.0.0.1"
    assert cfg.probes[0].schedule.every == 60 and cfg.probes[0].max_new_tokens == 32
    assert cfg.rate_limits.max_probes_per_minute == 6 and cfg.buffer.max_rows == 100_000
    assert cfg.telemetry.enabled and cfg.alerts.enabled


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (f"probes: [{PROBE}, schedule: {{every: 5 minutes}}}}]", ["probes.0.schedule.every", "Fix: use a duration"]),
        (f"probes: [{PROBE}, schedule: {{every: 5s, cron: '* * * * *'}}}}]", ["probes.0.schedule", "either every"]),
        (f"probes: [{PROBE}, schedule: {{cron: '*/5 * *'}}}}]", ["probes.0.schedule", "cron expression", "Fix:"]),
        ("probes: [{name: a, target: x}]", ["probes.0", "prompts", "dataset"]),
        ("probes: [{name: a, target: x, prompts: ['  ']}]", ["probes.0", "prompts is empty"]),
        (f"probes: [{PROBE}}}, {PROBE}}}]", ["probes:", "'a' is used twice"]),
        ("probes: [{name: 'a b', target: x, prompts: [hi]}]", ["probes.0.name", "Fix: use letters"]),
        (f"probes: [{PROBE}, timeout_s: -1}}]", ["probes.0.timeout_s", "greater than zero"]),
        (f"probes: [{PROBE}, max_new_tokens: 0}}]", ["probes.0.max_new_tokens", "README"]),
        (f"probes: [{PROBE}, check: [pii]}}]", ["probes.0.check", "Extra inputs"]),
        ("probez: []", ["probez", "Extra inputs"]),
        ("targets: {prod: {backend: openai}}", ["targets.prod.model", "Field required"]),
        ("metrics_port: 70000", ["metrics_port", "65535"]),
        ("telemetry: {enabled: false}", ["nothing to do", "Fix: add probes"]),
        ("telemetry: {every: 0}", ["telemetry.every", "greater than zero"]),
        ("rate_limits: {max_probes_per_minute: 0}", ["rate_limits.max_probes_per_minute"]),
        ("buffer: {max_rows: 0}", ["buffer.max_rows"]),
        ("alerts: {every: soon}", ["alerts.every", "not a duration"]),
        ("scrapes: [{name: s, url: 'http://x/metrics', allow: []}]", ["scrapes.0.allow", "Fix: omit it"]),
        ("host: '  '", ["host", "Fix: omit it"]),
        ("{a: [", ["Malformed YAML", "line 1"]),
        ("- 1", ["must be a YAML mapping"]),
    ],
)
def test_invalid_config_is_one_line_with_field_and_fix(text: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_monitor_config(text, "m.yaml")
    message = str(info.value)
    assert "\n" not in message and "m.yaml" in message and "Fix:" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist. Fix: pass an existing file to --config"):
        load_monitor_config(tmp_path / "nope.yaml")


def test_load_records_source(tmp_path: Path) -> None:
    file = tmp_path / "monitor.yaml"
    file.write_text(f"probes: [{PROBE}}}]\n")
    cfg = load_monitor_config(file)
    assert cfg.source == str(file) and cfg.base_dir() == tmp_path


def test_readme_example_alert_rules_and_notifications_are_valid() -> None:
    from gemmawatch.collectors.monitor.alerting import parse_alerting

    cfg = parse_monitor_config(EXAMPLE, "monitor.yaml")
    rules, routes = parse_alerting(cfg.alerts.rules, cfg.notifications, source="monitor.yaml")
    assert [r.name for r in rules] == ["slow-canary"] and list(routes) == ["critical"]
    with pytest.raises(ConfigError, match="monitor.yaml"):
        parse_alerting([{"name": "x", "metric": "probe.up"}], {}, source="monitor.yaml")


def test_stored_config_holds_no_secrets() -> None:
    from gemmawatch.collectors.monitor.service import stored_config

    cfg = parse_monitor_config(
        "database: postgresql://u:dbpass@db/x\n"
        "targets: {t: {backend: openai, model: m, base_url: 'http://bob:tpass@h:8000/v1'}}\n"
        "scrapes: [{name: s, url: 'http://scraper:spass@h:8000/metrics'}]\n"
        "notifications: {critical: ['json://hooks.internal/path/hooktoken'], warning: 'slack://T/B/slacktoken'}\n"
    )
    text = str(stored_config(cfg))
    for secret in ("dbpass", "tpass", "spass", "hooktoken", "slacktoken"):
        assert secret not in text
    assert "http://***@h:8000/metrics" in text and "database" not in stored_config(cfg)
