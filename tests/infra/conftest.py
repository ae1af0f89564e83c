"""Fixtures for the Pulumi program tests (helpers live in ``pulumi_harness``)."""

from pulumi_harness import example_runs

__all__ = ["example_runs"]
