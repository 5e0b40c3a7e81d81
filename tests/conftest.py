"""Shared test fixtures. Real CSV samples ship in hacalib/samples; the real video and tokenizers live in ../shared/fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """Path to ../shared/fixtures; tests that need it skip with a reason when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real video / tokenizer fixtures not found at {SHARED_FIXTURES} (only present in the team's checkout)")
    return SHARED_FIXTURES


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    """Two cores on the reference machine: keep torch from oversubscribing them."""
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests (`pytestmark = pytest.mark.usefixtures("one_thread")`): their bitwise
    comparisons and kill-and-resume timings are made at a fixed thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
