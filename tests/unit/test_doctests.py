"""The examples in every module's docstrings hold (they are part of the documentation)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import inferplane

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(inferplane.__path__, "inferplane.")
    if ".migrations" not in info.name
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
