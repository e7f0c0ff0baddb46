"""Finding lm-eval tasks by name, with gemmawatch's one-line errors.

lm-eval's own task index silently skips YAML files it cannot parse and fails late
(or with a long traceback) on names it does not know. Here we check first:

* every YAML under a user ``--include-path`` must parse and, when it declares a
  task, carry the keys lm-eval needs -> otherwise :class:`ConfigError` naming the file;
* every requested name must be a known task, group or tag (or a task YAML path, or
  a glob) -> otherwise :class:`UnknownNameError` with close matches.

Indexing lm-eval's ~15k built-in tasks takes ~10 s, so we first index only the
bundled suites and the include paths, and fall back to the full index only when
a requested name (or a group member) is not found there. Both indexes see the same
YAML files for the tasks we use, so the choice cannot change a score.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gemmawatch.errors import ConfigError, UnknownNameError, one_line

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

__all__ = ["LoadedTasks", "load_tasks", "resolve_tasks", "task_manager", "validate_include_paths"]

Progress = Callable[[str], None]

_OUTPUT_TYPES = ("loglikelihood", "loglikelihood_rolling", "generate_until", "multiple_choice")
#: Keys a task YAML may carry besides TaskConfig's fields (structure, not config).
_STRUCTURAL_KEYS = frozenset({"include", "tag", "group", "task_list", "class"})
_FIX_UNKNOWN = "Fix: check `lm_eval --tasks list` or pass --include-path DIR"


def set_offline_env() -> None:
    """Forbid hub downloads (models, datasets) unless the user set these variables.

    ``datasets`` and ``huggingface_hub`` read them at import time, so this runs
    before lm-eval is imported.
    """
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")


def _suite_dirs() -> list[Path]:
    from gemmawatch.evals.suites import suite_dir

    return [suite_dir()]


# ---------------------------------------------------------------- YAML validation


def _task_config_keys() -> frozenset[str]:
    from lm_eval.config.task import TaskConfig

    return frozenset(f.name for f in fields(TaskConfig)) | _STRUCTURAL_KEYS


def _yaml_files(root: Path) -> list[Path]:
    # Same walk as lm-eval's TaskIndex: every *.yaml below root, caches ignored.
    return sorted(p for p in root.glob("**/*.yaml") if "__pycache__" not in p.parts)


def _check_config(path: Path, cfg: dict[str, Any], task_keys: frozenset[str]) -> str | None:
    """Why ``cfg`` (a parsed YAML with includes merged) cannot be loaded, or None."""
    if "group" in cfg:
        return None if "task" in cfg else "group has no 'task' list"
    if "task" not in cfg or "class" in cfg:
        # No task key: a template for `include:` (lm-eval skips it). A `class`
        # task is Python-defined and may take any keys.
        return None
    if not isinstance(cfg["task"], str):
        return f"'task' must be a name, got {type(cfg['task']).__name__}"
    unknown = sorted(set(cfg) - task_keys)
    if unknown:
        close = difflib.get_close_matches(unknown[0], task_keys, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{unknown[0]}'{hint}"
    if not (cfg.get("dataset_path") or cfg.get("custom_dataset")):
        return "missing required key 'dataset_path' (or 'custom_dataset')"
    output_type = cfg.get("output_type", "generate_until")
    if output_type not in _OUTPUT_TYPES:
        return f"output_type '{output_type}' is not one of {', '.join(_OUTPUT_TYPES)}"
    if output_type == "multiple_choice" and "doc_to_choice" not in cfg:
        return "missing required key 'doc_to_choice' for output_type multiple_choice"
    return None


def validate_yaml_file(path: Path) -> None:
    """Raise :class:`ConfigError` (one line, naming ``path``) if lm-eval could not use it."""
    import yaml
    from lm_eval.tasks._yaml_loader import load_yaml

    try:
        # resolve_func=False: `!function` targets are checked when the task loads.
        cfg = load_yaml(path, resolve_func=False, recursive=True)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(
            one_line(f"Malformed task YAML {path}{where}: {problem}. Fix: correct the YAML syntax.")
        ) from err
    except (OSError, ValueError) as err:
        raise ConfigError(
            one_line(f"Malformed task YAML {path}: {err}. Fix: make it a mapping with a 'task' or 'group' key.")
        ) from err
    problem = _check_config(path, cfg, _task_config_keys())
    if problem:
        raise ConfigError(
            one_line(f"Invalid task YAML {path}: {problem}. Fix: see lm-eval's task guide for the keys.")
        )


def validate_include_paths(include_path: Iterable[Path]) -> None:
    """Check that each include path exists and that every task YAML in it is usable."""
    for root in include_path:
        root = Path(root).expanduser()
        if not root.exists():
            raise ConfigError(f"Include path {root} does not exist. Fix: pass an existing folder of task YAMLs.")
        for path in [root] if root.is_file() else _yaml_files(root):
            validate_yaml_file(path)


# ---------------------------------------------------------------- name resolution


@functools.lru_cache(maxsize=8)
def _cached_manager(paths: tuple[str, ...], include_defaults: bool) -> TaskManager:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(paths), include_defaults=include_defaults)


def builtin_task_names(progress: Progress | None = None) -> frozenset[str]:
    """Every name in lm-eval's built-in index, cached on disk per lm-eval install.

    Only names: enough to tell "unknown" from "built-in" and to suggest close
    matches without re-parsing ~14k YAML files (~10 s) on every typo.
    """
    if not _BUILTIN_NAMES:
        _BUILTIN_NAMES.append(_read_or_build_builtin_names(progress))
    return _BUILTIN_NAMES[0]


#: Process-wide memo of builtin_task_names() (a list so no `global` statement is needed).
_BUILTIN_NAMES: list[frozenset[str]] = []


def _read_or_build_builtin_names(progress: Progress | None) -> frozenset[str]:
    import lm_eval

    from gemmawatch.collectors.bundled import cache_root

    install = f"{lm_eval.__version__}:{Path(lm_eval.__file__).resolve().parent}"
    digest = hashlib.sha256(install.encode()).hexdigest()[:16]
    path = cache_root() / "lm-eval" / f"builtin-task-names-{digest}.json"
    try:
        return frozenset(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    if progress is not None:
        progress("Indexing lm-eval's built-in tasks (once per lm-eval install, about 10 s)...")
    names = _cached_manager((), True).all_tasks
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(names)), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    except OSError:
        pass  # a read-only cache only costs speed
    return frozenset(names)


def _members_known(name: str, index: dict[str, Any], seen: set[str] | None = None) -> bool:
    """True when ``name`` and (for groups) every referenced member is in ``index``."""
    from lm_eval.tasks._index import Kind

    seen = set() if seen is None else seen
    if name in seen:
        return True
    seen.add(name)
    entry = index.get(name)
    if entry is None:
        return False
    if entry.kind is not Kind.GROUP:
        return True
    return _group_items_known(entry.cfg.get("task") or [], index, seen)


def _group_items_known(items: Any, index: dict[str, Any], seen: set[str]) -> bool:
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, str):
            known = _members_known(item, index, seen)
        elif isinstance(item, dict) and "group" in item:
            # A group not in the index is defined inline: its own members must resolve.
            known = (
                _members_known(item["group"], index, seen)
                if item["group"] in index
                else _group_items_known(item.get("task") or [], index, seen)
            )
        else:
            # A dict with 'task' not in the index is an inline task definition: self-contained.
            known = True
        if not known:
            return False
    return True


def _is_yaml_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) and Path(name).expanduser().is_file()


def _is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def _paths(include_path: Sequence[Path] | None) -> tuple[str, ...]:
    return tuple(str(Path(p).expanduser().resolve()) for p in [*_suite_dirs(), *(include_path or [])])


def task_manager(
    tasks: Sequence[str], include_path: Sequence[Path] | None = None, progress: Progress | None = None
) -> TaskManager:
    """A TaskManager that knows every name in ``tasks`` (resolved names, no globs).

    The small index (bundled suites + include paths) when it holds every name and
    group member, else the full one (see module docstring).
    """
    set_offline_env()
    paths = _paths(include_path)
    small = _cached_manager(paths, False)
    if all(_is_yaml_path(t) or _members_known(t, small.task_index) for t in tasks):
        return small
    if progress is not None:
        progress("Loading lm-eval's built-in task index (about 10 s)...")
    return _cached_manager(paths, True)


def _unknown(name: str, known: Iterable[str]) -> UnknownNameError:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownNameError(f"Unknown task '{name}'.{hint} {_FIX_UNKNOWN}")


def resolve_tasks(
    tasks: Sequence[str],
    *,
    include_path: Sequence[Path] | None = None,
    progress: Progress | None = None,
) -> list[str]:
    """Validate include paths and check every task name; return the names to evaluate.

    Globs (``smoke_mc_*``) expand to the matching names; task YAML paths are kept
    as given (after validation). Raises :class:`ConfigError` or
    :class:`UnknownNameError` before any model is loaded.
    """
    if not tasks:
        raise UnknownNameError(f"No tasks given. {_FIX_UNKNOWN}")
    validate_include_paths(include_path or [])
    set_offline_env()
    local = set(_cached_manager(_paths(include_path), False).all_tasks)
    resolved: list[str] = []
    for name in tasks:
        if _is_yaml_path(name):
            validate_yaml_file(Path(name).expanduser())
            matches = [name]
        elif _is_glob(name):
            matches = fnmatch.filter(sorted(local | builtin_task_names(progress)), name)
        elif name in local or name in builtin_task_names(progress):
            matches = [name]
        else:
            matches = []
        if not matches:
            raise _unknown(name, local | builtin_task_names(progress))
        resolved += [m for m in matches if m not in resolved]
    return resolved


# ---------------------------------------------------------------- loading


@dataclass
class LoadedTasks:
    """Built lm-eval objects, ready for ``simple_evaluate(tasks=objects)``."""

    manager: TaskManager
    #: What the user asked for, built: Task or Group objects (tags expanded).
    objects: list[Any]
    #: Leaf tasks by name, in evaluation order.
    leaves: dict[str, Any]


def load_tasks(
    tasks: Sequence[str], *, include_path: Sequence[Path] | None = None, progress: Progress | None = None
) -> LoadedTasks:
    """Resolve and build the tasks once, so progress can report doc counts.

    Passing the built objects to ``simple_evaluate`` is what it would do with the
    names itself (``TaskManager.load``), so scores do not change; datasets load once.
    """
    names = resolve_tasks(tasks, include_path=include_path, progress=progress)
    tm = task_manager(names, include_path, progress)
    objects: list[Any] = []
    leaves: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name in names:
        try:
            loaded = tm.load([name])
        except Exception as err:  # lm-eval raises many types; all mean "this task cannot load"
            entry = tm.task_index.get(name)
            where = f" ({entry.yaml_path})" if entry is not None and entry.yaml_path else ""
            raise ConfigError(
                one_line(
                    f"Task '{name}'{where} could not be loaded: {type(err).__name__}: {err}. "
                    "Fix: check its YAML, hooks and that its dataset is available offline."
                )
            ) from err
        groups = loaded.get("groups", {})
        objects += [groups[name]] if name in groups else list(loaded["tasks"].values())
        for leaf, task in loaded["tasks"].items():
            if leaf in owner:
                # lm-eval refuses this too, with a ValueError deep in simple_evaluate.
                raise ConfigError(
                    f"Task '{leaf}' is requested twice (via '{owner[leaf]}' and '{name}'). "
                    "Fix: list each task or group once."
                )
            owner[leaf] = name
            leaves[leaf] = task
    return LoadedTasks(manager=tm, objects=objects, leaves=leaves)
