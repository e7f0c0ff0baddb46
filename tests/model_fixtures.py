"""Session fixtures that load the real bundled Gemma (owner: model engineer).

Registered from ``tests/conftest.py`` with ``from tests.model_fixtures import *``.
The model is loaded once per test session; the first session ever also converts
the GGUF (about two minutes, cached under ``$GEMMAWATCH_CACHE_DIR`` or the user cache).
Tests that use these fixtures must carry ``@pytest.mark.model``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gemmawatch.collectors.backends.transformers_backend import TransformersBackend
from gemmawatch.collectors.targets import BUILTIN_TARGETS, load_backend

__all__ = ["gemma_backend"]


@pytest.fixture(scope="session")
def gemma_backend() -> Iterator[TransformersBackend]:
    """The built-in ``gemma-3-270m`` target (float32, CPU or CUDA), shared by the whole session.

    Treat it as read-only: do not close it or change its tokenizer.
    """
    backend = load_backend(BUILTIN_TARGETS["gemma-3-270m"])
    assert isinstance(backend, TransformersBackend)
    yield backend
    backend.close()
