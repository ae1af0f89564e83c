"""Fixtures for the Pulumi program tests (helpers live in ``pulumi_harness``; moto's server and
an empty account per test, ``moto_server`` / ``moto_account``, are tests/conftest.py's)."""

from pulumi_harness import example_runs

__all__ = ["example_runs"]
