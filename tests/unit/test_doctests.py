"""The examples in every module's docstrings hold (they are part of the documentation)."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import inferplane

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(inferplane.__path__, "inferplane.")
    if ".migrations" not in info.name
    # engines on Ray Serve: the `ray` extra
    and (importlib.util.find_spec("ray") is not None or not info.name.startswith("inferplane.ray"))
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
