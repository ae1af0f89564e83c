"""Session fixtures for the source tests: real Prometheus and moto servers (see source_servers.py)."""

from source_servers import aws_credentials, black_hole, moto_server, project_root, prometheus_server

__all__ = ["aws_credentials", "black_hole", "moto_server", "project_root", "prometheus_server"]
