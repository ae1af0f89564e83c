"""Suite-wide settings.

Hypothesis runs *derandomized* here: the property and fuzz tests explore the same examples on
every run, so the CI gate is deterministic and a red run always reproduces. To explore new
inputs (and find new bugs), run with ``HYPOTHESIS_PROFILE=explore``; a failure it finds is
kept as an ``@example`` in the test before the fix lands.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def no_real_cloud(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The driver observes clouds through the standard credential chains; in tests those chains
    are empty, so no test can reach a real account (tests that need a cloud point boto3 at moto
    themselves)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.getbasetemp() / "no-cloud-config"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# -- moto's server: the one fixture every AWS test starts from ---------------------------------
# The driver's observation tests (tests/driver/aws_world.py), the Pulumi program's AWS tests
# (tests/infra) and the CloudWatch source tests (tests/forecasting/sources) all talk to it.


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """moto's server (AWS's API as moto implements it) on a free loopback port, per test module."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture()
def moto_account(moto_server: str) -> str:
    """An empty moto account for one test: moto keeps its state for the server's life."""
    import requests

    # A reset of a long-lived server can take over 10 s when the machine is loaded (seen at
    # load 35 on 2 cores); it is loopback, so a generous deadline costs nothing when quiet.
    requests.post(f"{moto_server}/moto-api/reset", timeout=60)
    return moto_server
