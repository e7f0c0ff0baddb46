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
BACKENDS.register(
    "llamacpp",
    "gemmawatch.collectors.backends.llamacpp_backend:LlamaCppBackend",
    extra="llamacpp",
    description="llama.cpp through llama-cpp-python, in this process (any GGUF)",
)
BACKENDS.register(
    "openai",
    "gemmawatch.collectors.backends.openai_backend:OpenAIBackend",
    extra="http",
    description="Any OpenAI-compatible HTTP server (vLLM, llama.cpp server, Ollama /v1, TGI, LM Studio)",
)
BACKENDS.register(
    "ollama",
    "gemmawatch.collectors.backends.ollama_backend:OllamaBackend",
    extra="ollama",
    description="Ollama's native API (/api/generate, /api/chat, /api/show)",
)
BACKENDS.register(
    "genai",
    "gemmawatch.collectors.backends.genai_backend:GenAIBackend",
    extra="genai",
    description="Google GenAI SDK: Gemini API key or Vertex AI project/location (hosted Gemma)",
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
