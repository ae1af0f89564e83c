"""Fixtures for the Pulumi program tests (helpers live in ``pulumi_harness``)."""

import socket
from collections.abc import Iterator

import pytest
import requests
from pulumi_harness import example_runs

__all__ = ["example_runs", "moto_account", "moto_endpoint"]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server (AWS's API as moto implements it) on a free loopback port, per module."""
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
def moto_account(moto_endpoint: str) -> str:
    """An empty moto account for one test."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    return moto_endpoint
