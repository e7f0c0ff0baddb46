"""Model backends: one Protocol (``Backend``) and a registry of implementations.

Built-ins are registered lazily by import path, so importing this package never
imports torch or transformers; ``BACKENDS.get("transformers")`` does.
"""

from __future__ import annotations

from gemmawatch.collectors.backends.base import (
    Backend,
    BackendFactory,
    GenerationRequest,
    GenerationResult,
    Messages,
    TargetInfo,
    TokenSource,
    tpot,
)
from gemmawatch.registry import Registry

#: Backend name -> factory taking a TargetInfo (``BACKENDS.get(info.backend)(info)``).
BACKENDS: Registry[BackendFactory] = Registry("backend")
BACKENDS.register(
    "transformers",
    "gemmawatch.collectors.backends.transformers_backend:TransformersBackend",
    description="Hugging Face transformers, in this process (CPU or CUDA)",
)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendFactory",
    "GenerationRequest",
    "GenerationResult",
    "Messages",
    "TargetInfo",
    "TokenSource",
    "tpot",
]
