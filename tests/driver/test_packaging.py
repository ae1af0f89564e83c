"""The container image covers every mode and source; the readiness probe can reach /metrics.

There is no Docker engine here, so the Dockerfile is checked for what it installs: its EXTRAS
are parsed from the file, the extras' requirements from pyproject.toml, and the third-party
imports of every metric source, model family and journal backend from the code (AST), mapped to
their distributions by the installed packages' metadata (``importlib.metadata``). A source
whose client library no installed requirement brings is a failure naming it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]

# Modules whose imports must work in the image: each metric source, each model family, the
# PostgreSQL journal driver (SQLAlchemy loads psycopg2 by URL), the Dask backend.
COVERED = [
    *sorted((REPO / "forecasting" / "sources").glob("_*.py")),
    *sorted((REPO / "forecasting" / "models").glob("*.py")),
    REPO / "forecasting" / "distributed.py",
]
EXTRA_IMPORTS = {"psycopg2"}  # imported by SQLAlchemy for postgresql:// journal URLs


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str]) -> set[str]:
    """The distributions ``pip install`` brings for ``requirements``, from installed metadata."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = _norm(requirement.name)
        key = name + "[" + ",".join(sorted(requirement.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        try:
            requires = importlib.metadata.requires(requirement.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            child = Requirement(text)
            marker = str(child.marker) if child.marker else ""
            if "extra ==" in marker and not any(
                f'extra == "{e}"' in marker for e in requirement.extras
            ):
                continue
            child.marker = None
            todo.append(child)
    return {k for k in seen if "[" not in k}


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    own = {"infra", "forecasting", "policies", "driver", "__future__"}
    return {n for n in names if n not in own and n not in sys.stdlib_module_names}


def _installed_extras() -> list[str]:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    match = re.search(r"^ARG EXTRAS=(\S+)$", dockerfile, re.M)
    assert match, "the Dockerfile names the extras it installs in ARG EXTRAS"
    assert '".[${EXTRAS}]"' in dockerfile  # and installs exactly those
    return match.group(1).split(",")


def test_the_image_installs_what_every_source_model_and_journal_imports() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in _installed_extras():
        assert extra in project["optional-dependencies"], f"no extra {extra!r} in pyproject.toml"
        wanted += project["optional-dependencies"][extra]
    installed = _closure(wanted)
    distributions = importlib.metadata.packages_distributions()

    missing = []
    for path in COVERED:
        for name in sorted(
            _third_party_imports(path) | (EXTRA_IMPORTS if path == COVERED[0] else set())
        ):
            candidates = {_norm(d) for d in distributions.get(name, [])}
            if not candidates & installed:
                missing.append(
                    f"{path.relative_to(REPO)} imports {name} ({', '.join(sorted(candidates)) or 'not installed here'})"
                )

    # google-cloud-monitoring brings google.cloud, protobuf, api_core and auth; azure-identity
    # brings azure.core: their transitive distributions are installed with the named ones.
    transitive = {
        "protobuf",
        "google-api-core",
        "google-auth",
        "azure-core",
        "googleapis-common-protos",
    }
    missing = [m for m in missing if not any(t in m for t in transitive)]
    assert missing == [], "the image lacks:\n" + "\n".join(missing)


def test_the_image_has_git_and_trusts_a_mounted_checkout_for_gitops() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert re.search(r"apt-get install [^\n]*\bgit\b", dockerfile)
    assert "safe.directory" in dockerfile  # git refuses a checkout owned by another uid otherwise


def test_the_kubernetes_probe_reaches_metrics_on_the_pods_address() -> None:
    text = (REPO / "deploy" / "kubernetes" / "deployment.yaml").read_text()
    documents = list(YAML(typ="safe").load_all(text))
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probe = container["readinessProbe"]["httpGet"]
    args = container["args"]
    listen = args[args.index("--metrics-listen") + 1]
    host, port = listen.rsplit(":", 1)
    assert host == "0.0.0.0" and int(port) == ports[probe["port"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.server
def test_run_with_metrics_listen_serves_metrics_there(project: Path, tmp_path: Path) -> None:
    """The deployment's flag, for real: the service answers /metrics on the address given."""
    port = _free_port()
    env = {
        "PYTHONPATH": str(REPO),
        "MIRRORCAST_STATE_DIR": str(tmp_path / "state"),
        "PATH": "/usr/bin:/bin",
    }
    stack = project / "stacks" / "Pulumi.demo.yaml"
    stack.write_text(
        stack.read_text().replace(
            "    history: 14d\n", "    history: 3d\n    models: [seasonal_naive]\n"
        )
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driver.cli",
            "run",
            "--stack",
            "demo",
            "--every",
            "1h",
            "--metrics-listen",
            f"0.0.0.0:{port}",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    status = r.status
            except OSError:
                if process.poll() is not None:
                    pytest.fail(
                        f"the driver exited: {process.stderr.read().decode() if process.stderr else ''}"
                    )
                time.sleep(0.2)
        assert status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
