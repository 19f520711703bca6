"""The examples in the routing modules' docstrings hold."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from inferplane.routing import candidate, constraints, health, policy, retry


@pytest.mark.parametrize("module", [candidate, constraints, health, policy, retry],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
