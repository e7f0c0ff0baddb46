"""Session fixtures that load the real bundled Gemma (owner: model engineer).

Registered from ``tests/conftest.py`` with ``from model_fixtures import *`` (tests/ is on pytest's pythonpath).
The model is loaded once per test session; the first session ever also converts
the GGUF (about two minutes, cached under ``$GEMMAWATCH_CACHE_DIR`` or the user cache).
Tests that use these fixtures must carry ``@pytest.mark.model``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

import pytest

from gemmawatch.collectors.backends.transformers_backend import THREADS_ENV, TransformersBackend
from gemmawatch.collectors.targets import BUILTIN_TARGETS, load_backend

__all__ = ["gemma_backend"]


@pytest.fixture(scope="session")
def gemma_backend() -> Iterator[TransformersBackend]:
    """The built-in ``gemma-3-270m`` target (float32, CPU or CUDA), shared by the whole session.

    Treat it as read-only: do not close it or change its tokenizer. On machines with at
    most two cores torch runs one thread (several times faster when other processes
    compete for the cores) unless ``$GEMMAWATCH_TORCH_THREADS`` says otherwise.
    """
    info = BUILTIN_TARGETS["gemma-3-270m"]
    if (os.cpu_count() or 1) <= 2 and not os.environ.get(THREADS_ENV):
        info = replace(info, options={**info.options, "threads": 1})
    backend = load_backend(info)
    assert isinstance(backend, TransformersBackend)
    yield backend
    backend.close()
