from __future__ import annotations

import pytest

from tests.factories import TestNetwork


@pytest.fixture
def network() -> TestNetwork:
    return TestNetwork()
