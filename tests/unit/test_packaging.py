"""The one-namespace layout: every package folder is shipped, bare folder names are never imported."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
MAPPED_FOLDERS = {
    "core": "gemmawatch",
    "collectors": "gemmawatch.collectors",
    "evals": "gemmawatch.evals",
    "storage": "gemmawatch.storage",
    "dashboard": "gemmawatch.dashboard",
}


def _package_for(folder: Path) -> str:
    rel = folder.relative_to(ROOT)
    top = rel.parts[0]
    return ".".join([MAPPED_FOLDERS[top], *rel.parts[1:]])


def test_package_dir_maps_every_top_folder() -> None:
    package_dir = SETUPTOOLS["package-dir"]
    assert package_dir == {pkg: folder for folder, pkg in MAPPED_FOLDERS.items()}


def test_every_folder_with_init_is_listed() -> None:
    listed = set(SETUPTOOLS["packages"])
    found = {
        _package_for(init.parent)
        for top in MAPPED_FOLDERS
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found, "no packages found at all"
    missing = sorted(found - listed)
    assert not missing, f"folders with __init__.py missing from [tool.setuptools] packages: {missing}"
    stale = sorted(listed - found)
    assert not stale, f"packages listed in pyproject.toml without a folder: {stale}"


def test_bare_folder_imports_are_banned_by_ruff() -> None:
    banned = PYPROJECT["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-api"]
    assert set(MAPPED_FOLDERS) <= set(banned)


def test_no_source_file_imports_a_bare_folder_name() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(core|collectors|evals|storage|dashboard)(\s|\.|$)", re.M)
    offenders = [
        str(p.relative_to(ROOT))
        for top in [*MAPPED_FOLDERS, "tests", "benchmarks"]
        for p in (ROOT / top).rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_console_script_points_into_the_namespace() -> None:
    assert PYPROJECT["project"]["scripts"]["gemmawatch"].startswith("gemmawatch.cli.")


def test_torch_install_line_names_the_cpu_build() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "torch==2.13.0" in readme and "torch==2.13.0" in ci
