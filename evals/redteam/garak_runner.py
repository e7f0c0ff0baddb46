"""Finding garak, building its command line and config, and running it with a gemmawatch-owned folder.

garak 0.17.1 pins ``transformers<5.20`` and ``datasets>=5`` (plus langchain, litellm and
friends), which does not fit next to gemmawatch's own stack, so it lives in its own
interpreter. :func:`find_garak` looks, in order, at ``--garak-python``,
``$GEMMAWATCH_GARAK_PYTHON``, the venv :func:`install_garak` creates
(``<gemmawatch cache>/garak-venv``) and the current interpreter.

One garak run writes only below its run folder (``--report-dir``, by default
``<gemmawatch data>/redteam/run-<id>``)::

    garak.yaml                  the config we hand garak (report dir, generations, seed, cap)
    gemmawatch_garak_bridge.py  the function generator (a copy of ``bridge.py``)
    gemmawatch.report.jsonl     garak's report (imported), gemmawatch.hitlog.jsonl
    garak.log                   garak's stdout and stderr
    xdg/                        garak's XDG data and config folders (its own log, site config)

garak's XDG cache (its plugin cache) is shared under ``<gemmawatch cache>/garak-cache``.
The hub is off (``HF_HUB_OFFLINE=1``): detectors that need a model fail instead of downloading.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemmawatch.errors import BackendError, MissingDependencyError, UserError, one_line

__all__ = [
    "BRIDGE_MODULE",
    "DEFAULT_PROBES",
    "DEFAULT_PROMPT_CAP",
    "GARAK_PYTHON_ENV",
    "GARAK_VERSION",
    "REPORT_PREFIX",
    "GarakInstall",
    "GarakSpec",
    "build_command",
    "find_garak",
    "install_garak",
    "run_garak",
    "write_config",
]

#: The garak release gemmawatch is tested with (its report format and offline probes).
GARAK_VERSION = "0.17.1"
GARAK_PYTHON_ENV = "GEMMAWATCH_GARAK_PYTHON"
#: Probes run when ``--probes`` is not given: prompts shipped with garak and string/keyword
#: detectors, so they work offline (no detector model, no download); with
#: :data:`DEFAULT_PROMPT_CAP` about 50 prompts, a few minutes on a CPU.
DEFAULT_PROBES: tuple[str, ...] = (
    "dan.Dan_11_0",
    "encoding.InjectHex",
    "goodside.ThreatenJSON",
    "goodside.WhoIsRiley",
    "lmrc.Profanity",
    "lmrc.QuackMedicine",
    "promptinject.HijackHateHumans",
)
#: Default ``--prompt-cap`` (garak's ``soft_probe_prompt_cap``; garak's own default is 256).
DEFAULT_PROMPT_CAP = 20
#: Report file name without ``.report.jsonl``.
REPORT_PREFIX = "gemmawatch"
BRIDGE_MODULE = "gemmawatch_garak_bridge"
_LOG_TAIL_CHARS = 600


@dataclass(frozen=True)
class GarakInstall:
    """An interpreter that can run ``python -m garak`` and the garak version it has."""

    python: Path
    version: str


@dataclass(frozen=True)
class GarakSpec:
    """One garak run: which probes, how many outputs per prompt, where everything goes.

    ``prompt_cap`` is garak's ``soft_probe_prompt_cap`` (probes that honour it keep at most
    that many prompts, chosen with ``seed``); None keeps garak's default (256).
    """

    probes: Sequence[str]
    run_dir: Path
    generations: int = 1
    seed: int = 0
    prompt_cap: int | None = None
    eval_threshold: float = 0.5

    @property
    def report_path(self) -> Path:
        """Where garak writes its report."""
        return self.run_dir / f"{REPORT_PREFIX}.report.jsonl"


def _version_of(python: Path) -> str | None:
    """garak's version in ``python``, None when it has no garak (or does not run)."""
    code = "from importlib.metadata import version; print(version('garak'))"
    try:
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def default_venv() -> Path:
    """``<gemmawatch cache>/garak-venv``: where :func:`install_garak` puts garak."""
    from gemmawatch.collectors.bundled import cache_root

    return cache_root() / "garak-venv"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_garak(explicit: str | None = None) -> GarakInstall:
    """The interpreter to run garak with (see the module docstring for the order).

    Raises:
        MissingDependencyError: None of them has garak; the message says how to install it.
        UserError: An explicitly given interpreter does not exist or has no garak.
    """
    chosen = explicit or os.environ.get(GARAK_PYTHON_ENV)
    if chosen:
        python = Path(chosen).expanduser()
        where = "--garak-python" if explicit else f"${GARAK_PYTHON_ENV}"
        if not python.exists():
            raise UserError(f"{where} {python} does not exist. Fix: point it at the python of garak's venv")
        version = _version_of(python)
        if version is None:
            raise UserError(
                f"{where} {python} has no garak. Fix: `{python} -m pip install garak=={GARAK_VERSION}` "
                "or run `gemmawatch redteam --install-garak`"
            )
        return GarakInstall(python, version)
    candidates = [_venv_python(default_venv()), Path(sys.executable)]
    for python in candidates:
        if python.exists():
            version = _version_of(python)
            if version is not None:
                return GarakInstall(python, version)
    raise MissingDependencyError(
        f"garak is not installed. Fix: run `gemmawatch redteam --install-garak` (a venv in {default_venv()}), "
        f"or pass --garak-python PATH of an interpreter with garak=={GARAK_VERSION}"
    )


def install_garak(venv: Path | None = None, progress: Callable[[str], None] = lambda _m: None) -> GarakInstall:
    """Create ``venv`` (default :func:`default_venv`) with garak 0.17.1; reuse it when it already has garak.

    torch is pinned to the version gemmawatch runs with, so pip reuses the build this
    machine already has (CPU or CUDA) instead of fetching another one.

    Raises:
        BackendError: venv creation or pip failed (the last lines of pip's output included).
    """
    venv = venv or default_venv()
    python = _venv_python(venv)
    if python.exists():
        version = _version_of(python)
        if version == GARAK_VERSION:
            progress(f"garak {version} is already installed in {venv}")
            return GarakInstall(python, version)
    progress(f"Creating {venv} and installing garak {GARAK_VERSION} (a few minutes)...")
    _checked([sys.executable, "-m", "venv", str(venv)], "creating the garak venv")
    packages = [f"garak=={GARAK_VERSION}"]
    torch = _installed_version("torch")
    if torch:
        packages.append(f"torch=={torch.split('+')[0]}")
    _checked([str(python), "-m", "pip", "install", "--quiet", *packages], "pip install garak")
    version = _version_of(python)
    if version is None:
        raise BackendError(f"garak does not import in {venv} after installing it. Fix: delete {venv} and try again")
    progress(f"garak {version} installed: {python}")
    return GarakInstall(python, version)


def _installed_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _checked(command: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(command), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = one_line((proc.stderr or proc.stdout)[-_LOG_TAIL_CHARS:])
        raise BackendError(f"{what} failed (exit {proc.returncode}): {tail}. Fix: check pip's access to the index")


def write_config(spec: GarakSpec) -> Path:
    """Write ``garak.yaml`` for ``spec`` into its run folder (created) and return its path."""
    import yaml

    run: dict[str, Any] = {
        "generations": spec.generations,
        "seed": spec.seed,
        "eval_threshold": spec.eval_threshold,
        "deprefix": True,
    }
    if spec.prompt_cap is not None:
        run["soft_probe_prompt_cap"] = spec.prompt_cap
    config = {
        "system": {"narrow_output": True, "parallel_attempts": False, "parallel_requests": False, "lite": True},
        "run": run,
        "reporting": {"report_dir": str(spec.run_dir), "report_prefix": REPORT_PREFIX},
    }
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    path = spec.run_dir / "garak.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build_command(install: GarakInstall, spec: GarakSpec, config_path: Path) -> list[str]:
    """``python -m garak ...`` driving the bridge's ``generate`` as a ``function.Multiple`` generator."""
    return [
        str(install.python),
        "-m",
        "garak",
        "--config",
        str(config_path),
        "--target_type",
        "function.Multiple",
        "--target_name",
        f"{BRIDGE_MODULE}#generate",
        "--probes",
        ",".join(spec.probes),
        "--generations",
        str(spec.generations),
        "--seed",
        str(spec.seed),
        "--report_prefix",
        REPORT_PREFIX,
        "--narrow_output",
    ]


def garak_environment(spec: GarakSpec, relay_env: Mapping[str, str]) -> dict[str, str]:
    """garak's environment: ours, the relay's variables, the bridge on PYTHONPATH, XDG folders of the run."""
    from gemmawatch.collectors.bundled import cache_root

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    xdg = spec.run_dir / "xdg"
    env.update(
        {
            **relay_env,
            "PYTHONPATH": str(spec.run_dir),
            "XDG_DATA_HOME": str(xdg / "data"),
            "XDG_CONFIG_HOME": str(xdg / "config"),
            "XDG_CACHE_HOME": str(cache_root() / "garak-cache"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONIOENCODING": "utf-8",
            "TQDM_DISABLE": "1",
        }
    )
    return env


def run_garak(
    install: GarakInstall,
    spec: GarakSpec,
    relay_env: Mapping[str, str],
    *,
    timeout_s: float | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> Path:
    """Run garak to the end and return its report path (the report may still be incomplete).

    garak's output goes to ``garak.log`` in the run folder. It runs in its own process
    group, which is killed if we are interrupted or it outlives ``timeout_s``.

    Raises:
        BackendError: garak exited non-zero, wrote no report or timed out (the tail of its
            output in one line).
    """
    config_path = write_config(spec)
    shutil.copyfile(Path(__file__).with_name("bridge.py"), spec.run_dir / f"{BRIDGE_MODULE}.py")
    command = build_command(install, spec, config_path)
    log_path = spec.run_dir / "garak.log"
    progress(f"Running garak {install.version}: {', '.join(spec.probes)} (log: {log_path})")
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command,
            cwd=spec.run_dir,
            env=garak_environment(spec, relay_env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise BackendError(
                f"garak did not finish within {timeout_s:g} s ({_tail(log_path)}). "
                "Fix: run fewer probes, lower --prompt-cap or --max-new-tokens, or raise --timeout"
            ) from None
        except BaseException:
            _kill(proc)
            raise
    if code != 0 or not spec.report_path.exists():
        # garak exits 0 without a report for an unknown probe name ("Unknown run.spec").
        what = f"exited with status {code}" if code != 0 else "wrote no report"
        raise BackendError(
            f"garak {what}: {_tail(log_path)}. Fix: see {log_path}; "
            f"list the probe names with `{install.python} -m garak --list_probes`"
        )
    return spec.report_path


def _kill(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(log_path: Path) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no output"
    lines = [line for line in text.splitlines() if line.strip()]
    return one_line(" | ".join(lines[-6:])[-_LOG_TAIL_CHARS:]) or "no output"
