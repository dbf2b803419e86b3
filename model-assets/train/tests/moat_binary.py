"""The `moat` binary the tests drive: target/debug, else target/release (CARGO_TARGET_DIR
respected). Missing: a failure when MOAT_REQUIRE_TRAINING_STACK is set (CI), else a skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def moat_bin() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        p = target / profile / "moat"
        if p.exists():
            return p
    if os.environ.get("MOAT_REQUIRE_TRAINING_STACK"):
        raise AssertionError("no moat binary: run `cargo build -p moat` first")
    pytest.skip("moat binary not built (cargo build -p moat)")
