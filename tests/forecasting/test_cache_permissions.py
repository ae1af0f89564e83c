"""The engine's cache (model choices, numba kernels) is owner-only whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from forecasting import ForecastEngine
from infra.config import ForecastSettings


@pytest.fixture
def loose_umask() -> Iterator[None]:
    # A typical umask: anything not made private on purpose comes out world-readable.
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cache_directories_are_0700_and_model_choices_0600(
    tmp_path: Path, seasonal_cpu: pd.Series, loose_umask: None
) -> None:
    cache = tmp_path / "state" / "models"
    engine = ForecastEngine(ForecastSettings(models=["seasonal_naive", "ses"]), cache_dir=cache)
    engine.forecast(seasonal_cpu, pool="asg", metric="cpu")
    choices = list((cache / "selection").iterdir())
    assert [p.name for p in choices] == ["asg__cpu.json"]
    assert _mode(cache) == 0o700
    assert _mode(cache / "selection") == 0o700
    assert _mode(choices[0]) == 0o600


def test_a_choice_file_left_world_readable_is_made_private_when_rewritten(
    tmp_path: Path, seasonal_cpu: pd.Series, loose_umask: None
) -> None:
    cache = tmp_path / "models"
    (cache / "selection").mkdir(parents=True)
    stale = cache / "selection" / "asg__cpu.json"
    stale.write_text("{}")  # unreadable as a choice: the engine re-selects and rewrites it
    stale.chmod(0o644)
    (cache / "selection").chmod(0o755)
    engine = ForecastEngine(ForecastSettings(models=["seasonal_naive", "ses"]), cache_dir=cache)
    engine.forecast(seasonal_cpu, pool="asg", metric="cpu")
    assert _mode(cache / "selection") == 0o700
    assert _mode(stale) == 0o600


def test_numba_cache_files_under_the_cache_dir_are_made_private_after_a_fit(
    tmp_path: Path,
    seasonal_cpu: pd.Series,
    loose_umask: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "models"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    engine = ForecastEngine(ForecastSettings(models=["seasonal_naive", "ses"]), cache_dir=cache)
    assert os.environ["NUMBA_CACHE_DIR"] == str(cache / "numba")
    assert _mode(cache / "numba") == 0o700
    # numba was imported by earlier tests, so stand in for the kernels it writes with the
    # umask's modes (it writes index and data files into per-module folders).
    kernels = cache / "numba" / "statsforecast_ets"
    kernels.mkdir()
    (kernels / "ets.etscalc-1.py311.nbi").write_bytes(b"index")
    engine.forecast(seasonal_cpu, pool="asg", metric="cpu")
    assert _mode(kernels) == 0o700
    assert _mode(kernels / "ets.etscalc-1.py311.nbi") == 0o600
