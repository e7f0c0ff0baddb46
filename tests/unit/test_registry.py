"""The typed plugin registry."""

from __future__ import annotations

import pytest

from gemmawatch.errors import MissingDependencyError, UnknownNameError
from gemmawatch.registry import Registry


def test_lazy_target_is_imported_on_first_lookup() -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("join", "os.path:join")
    import os.path

    assert reg.get("join") is os.path.join
    assert "join" in reg and reg.names() == ["join"]


def test_unknown_name_lists_what_is_available() -> None:
    reg: Registry[object] = Registry("backend")
    reg.register("b", "os:sep")
    reg.register("a", "os:sep")
    with pytest.raises(UnknownNameError) as info:
        reg.get("zzz")
    assert str(info.value) == "Unknown backend 'zzz'. Available: a, b"


def test_missing_optional_dependency_gives_install_hint() -> None:
    reg: Registry[object] = Registry("backend")
    reg.register("llamacpp", "gemmawatch_no_such_module_xyz:Backend", extra="llamacpp")
    with pytest.raises(MissingDependencyError) as info:
        reg.get("llamacpp")
    msg = str(info.value)
    assert "gemmawatch_no_such_module_xyz" in msg and "pip install 'gemmawatch[llamacpp]'" in msg
    assert "\n" not in msg


def test_lazy_target_must_name_module_and_object() -> None:
    reg: Registry[object] = Registry("backend")
    with pytest.raises(ValueError):
        reg.register("bad", "no_colon_here")
