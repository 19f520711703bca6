"""The examples in the planner modules' docstrings hold."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import inferplane.planner

MODULES = sorted(info.name for info in pkgutil.iter_modules(inferplane.planner.__path__,
                                                               "inferplane.planner."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
