"""Fixtures for the source tests: a real Prometheus (see source_servers.py); moto's server is
tests/conftest.py's ``moto_server``."""

from source_servers import (
    aws_credentials,
    black_hole,
    project_root,
    prometheus_server,
    stack_project,
)

__all__ = ["aws_credentials", "black_hole", "project_root", "prometheus_server", "stack_project"]
