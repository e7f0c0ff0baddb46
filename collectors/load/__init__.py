"""Load and latency benchmarking: profiles, request drivers, raw events, vLLM-defined metrics.

``gemmawatch bench load`` (``gemmawatch.load_pipeline``) puts the parts together:
prompts (:mod:`.prompts`) are released by a profile (:mod:`.profiles`,
:mod:`.runner`, :mod:`.plan`) through a driver (:mod:`.http_driver` for
OpenAI-compatible servers, :mod:`.inprocess_driver` for any other backend), every
request is kept as a :class:`~.events.RequestEvent`, and the statistics
(:mod:`.metrics`) and the saturation point (:mod:`.saturation`) are computed from
those events afterwards.
"""

from __future__ import annotations

from gemmawatch.collectors.load.events import PHASES, RequestEvent
from gemmawatch.collectors.load.profiles import PROFILES, Profile, make_profile
from gemmawatch.collectors.load.prompts import LoadPrompt
from gemmawatch.collectors.load.runner import Budget, Recorder

__all__ = ["PHASES", "PROFILES", "Budget", "LoadPrompt", "Profile", "Recorder", "RequestEvent", "make_profile"]
