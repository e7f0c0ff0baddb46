"""Collectors: model backends and targets (what we measure) and telemetry (how the host behaves).

Importing this package is cheap: torch and transformers load only when a backend does.
"""

from __future__ import annotations

from gemmawatch.collectors.targets import BUILTIN_TARGETS, list_targets, load_backend, parse_spec, resolve_target

__all__ = ["BUILTIN_TARGETS", "list_targets", "load_backend", "parse_spec", "resolve_target"]
