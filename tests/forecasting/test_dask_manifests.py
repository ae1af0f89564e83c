"""deploy/kubernetes/dask-cluster.yaml runs: its scheduler and worker commands, started here as
the pods would start them, form a cluster the engine uses through ``forecast.backend``.

The commands are the manifest's own (only the scheduler's address and ports are local), run
with the real ``dask`` CLI; the driver's address is the one the manifest's comment tells the
stack file to use, with the Service's name swapped for loopback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ruamel.yaml import YAML

from forecasting import Forecast, ForecastEngine
from infra.config import ForecastSettings

pytest.importorskip("distributed", reason="dask.distributed is not installed")

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "deploy" / "kubernetes" / "dask-cluster.yaml"
DASK = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")


def _documents() -> list[Any]:
    return [d for d in YAML(typ="safe").load_all(MANIFEST.read_text()) if d is not None]


def _container(component: str) -> dict[str, Any]:
    for doc in _documents():
        if (
            doc["kind"] == "Deployment"
            and doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ):
            containers: list[dict[str, Any]] = doc["spec"]["template"]["spec"]["containers"]
            return containers[0]
    raise AssertionError(f"no {component} Deployment in {MANIFEST}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def manifest_cluster() -> Iterator[str]:
    if DASK is None:
        pytest.skip("the dask command line (dask[distributed]) is not installed")
    port = _free_port()
    scheduler = [
        part.replace("8786", str(port)).replace(":8787", ":0")
        for part in _container("scheduler")["command"]
    ]
    service = "tcp://mirrorcast-dask-scheduler:8786"
    address = f"tcp://127.0.0.1:{port}"
    worker_command = _container("worker")["command"]
    assert service in worker_command  # the workers find the scheduler through its Service
    worker = [address if part == service else part for part in worker_command]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(subprocess.Popen([DASK, *scheduler[1:]], env=env, stderr=subprocess.DEVNULL))
        started.append(subprocess.Popen([DASK, *worker[1:]], env=env, stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout=5) as client:
                    if client.nthreads():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the manifest's scheduler and worker did not come up")
            time.sleep(1)
        yield address
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_the_manifests_commands_make_a_cluster_the_engine_selects_on(
    manifest_cluster: str, seasonal_cpu: pd.Series
) -> None:
    y = seasonal_cpu.iloc[-3 * 288 :]
    fleet = {(f"pool{i}", "cpu"): y * (1 + i / 10) for i in range(8)}
    settings = ForecastSettings.model_validate(
        {"models": ["seasonal_naive", "auto_ets"], "history": "3d", "backend": manifest_cluster}
    )
    now = y.index[-1].to_pydatetime().replace(tzinfo=UTC)
    engine = ForecastEngine(settings)
    out = engine.forecast_many(fleet, now=now)
    engine.close()
    here = settings.model_copy(update={"backend": "local", "workers": 1})
    local = ForecastEngine(here).forecast_many(fleet, now=now)

    assert engine.notes == []  # reached the cluster: no degraded line
    for key, forecast in out.items():
        assert isinstance(forecast, Forecast)
        assert (forecast.model, forecast.accuracy) == (local[key].model, local[key].accuracy)  # type: ignore[union-attr]


def test_the_workers_are_single_threaded_one_per_pod_from_the_drivers_image() -> None:
    worker, scheduler = _container("worker"), _container("scheduler")
    driver = YAML(typ="safe").load(
        (REPO / "deploy" / "kubernetes" / "deployment.yaml").read_text().split("\n---")[0]
    )
    image = driver["spec"]["template"]["spec"]["containers"][0]["image"]

    assert worker["image"] == scheduler["image"] == image
    assert "--nthreads=1" in worker["command"] and "--nworkers=1" in worker["command"]
    assert worker["resources"]["limits"]["cpu"] == "1"
