"""The public surface is explicit: every name in __all__ exists and is documented."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["sseaun.sdk", "sseaun.sdk.core"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_have_docstrings(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, name
    for attr in module.__all__:
        obj = getattr(module, attr)
        generated = getattr(obj, "__module__", "").startswith("sseaun.v1")
        if callable(obj) and not generated:
            assert (obj.__doc__ or "").strip(), f"{name}.{attr} has no docstring"


def test_sdk_reexports_the_core() -> None:
    sdk = importlib.import_module("sseaun.sdk")
    core = importlib.import_module("sseaun.sdk.core")
    assert set(core.__all__) <= set(sdk.__all__)


def test_no_private_module_leaks_into_the_public_surface() -> None:
    core = importlib.import_module("sseaun.sdk.core")
    assert not [n for n in core.__all__ if n.startswith("_")]
