"""The ``ws`` fixture; the helpers behind it live in support.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)
