"""The production monitor: scheduled canary probes, scrapes, telemetry and alerts (``gemmawatch monitor``)."""
