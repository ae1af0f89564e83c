"""The shipped deployment files say what docs/driver.md promises: non-root, state volume, /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]


def documents(path: Path) -> list[Any]:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d is not None]


def test_the_kubernetes_workloads_run_non_root_with_the_state_volume() -> None:
    cronjob, claim = documents(REPO / "deploy" / "kubernetes" / "cronjob.yaml")
    deployment, service = documents(REPO / "deploy" / "kubernetes" / "deployment.yaml")

    assert cronjob["kind"] == "CronJob" and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert claim["kind"] == "PersistentVolumeClaim"
    for pod in (
        cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        deployment["spec"]["template"]["spec"],
    ):
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["args"][:3] == ["run", "--stack", "prod"]
        assert {"name": "state", "mountPath": "/var/lib/mirrorcast"} in container["volumeMounts"]
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert (
        "--once"
        in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert (
        deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    )
    (port,) = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert port["containerPort"] == 9464 and service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_the_workflow_previews_pull_requests_and_updates_on_merge() -> None:
    (workflow,) = documents(REPO / ".github" / "workflows" / "mirrorcast.yml")
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    steps = workflow["jobs"]["deploy"]["steps"]
    actions = {s.get("name"): s for s in steps}
    assert actions["Preview"]["uses"].startswith("pulumi/actions@")
    assert actions["Preview"]["with"]["command"] == "preview"
    assert actions["Preview"]["if"] == "github.event_name == 'pull_request'"
    assert actions["Update"]["with"]["command"] == "up"
    assert actions["Update"]["if"] == "github.event_name == 'push'"


def test_the_systemd_units_run_one_cycle_per_timer_tick_as_a_service_user() -> None:
    service = (REPO / "deploy" / "systemd" / "mirrorcast@.service").read_text()
    timer = (REPO / "deploy" / "systemd" / "mirrorcast@.timer").read_text()
    assert "ExecStart=/opt/mirrorcast/.venv/bin/mirrorcast run --stack %i --once" in service
    assert "User=mirrorcast" in service and "StateDirectoryMode=0700" in service
    assert "OnCalendar=*:0/5" in timer


def test_the_container_runs_as_a_non_root_user_with_a_state_volume() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert "USER mirrorcast" in dockerfile
    assert 'VOLUME ["/var/lib/mirrorcast"]' in dockerfile and "EXPOSE 9464" in dockerfile
    assert 'ENTRYPOINT ["mirrorcast"]' in dockerfile
