"""ORM models of every gemmawatch table, one module per aggregate.

Import models from here (``from gemmawatch.storage.models import Run``);
``Base.metadata`` holds the full schema that the migrations must match.
"""

from gemmawatch.storage.models.alert import (
    AGGREGATIONS,
    ALERT_STATES,
    COMPARATORS,
    DATA_SOURCES,
    EVENT_STATES,
    NOTIFIED_TRANSITIONS,
    RULE_KINDS,
    SEVERITIES,
    Alert,
    AlertEvent,
    AlertNotification,
    AlertRule,
)
from gemmawatch.storage.models.base import (
    NAMING_CONVENTION,
    Base,
    BigIntId,
    JSONType,
    UTCDateTime,
    as_utc,
    json_dumps,
    utcnow,
)
from gemmawatch.storage.models.load import LOAD_PHASES, LoadRequest
from gemmawatch.storage.models.metric import MetricResult
from gemmawatch.storage.models.run import RUN_STATUSES, Run
from gemmawatch.storage.models.sample import Sample
from gemmawatch.storage.models.target import Target
from gemmawatch.storage.models.telemetry import TelemetrySample
from gemmawatch.storage.models.telemetry_rollup import ROLLUP_RESOLUTIONS, TelemetryRollup, TelemetryRollupState

__all__ = [
    "AGGREGATIONS",
    "ALERT_STATES",
    "COMPARATORS",
    "DATA_SOURCES",
    "EVENT_STATES",
    "LOAD_PHASES",
    "NAMING_CONVENTION",
    "NOTIFIED_TRANSITIONS",
    "ROLLUP_RESOLUTIONS",
    "RULE_KINDS",
    "RUN_STATUSES",
    "SEVERITIES",
    "Alert",
    "AlertEvent",
    "AlertNotification",
    "AlertRule",
    "Base",
    "BigIntId",
    "JSONType",
    "LoadRequest",
    "MetricResult",
    "Run",
    "Sample",
    "Target",
    "TelemetryRollup",
    "TelemetryRollupState",
    "TelemetrySample",
    "UTCDateTime",
    "as_utc",
    "json_dumps",
    "utcnow",
]
