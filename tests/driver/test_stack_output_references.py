"""Where the driver gets the stack outputs a metric's dimensions refer to, and what it says when
it cannot (driver/stack_outputs.py; the resolution itself is tested against moto's CloudWatch in
tests/infra/test_metric_dimensions_from_outputs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driver_helpers import assert_reads_the_primarys_ids, multicloud_project

from driver.executor import PlanExecutor
from driver.service import Driver


class ReadsOutputs(PlanExecutor):
    """Plans only, but can read a stack's ``pools`` output (as the apply executor does)."""

    def __init__(self, pools: dict[str, Any] | None) -> None:
        self.pools = pools
        self.reads = 0

    def pools_output(self) -> dict[str, Any] | None:
        self.reads += 1
        return self.pools


def test_a_plan_driver_with_no_deployment_in_its_backend_says_where_it_looked(
    tmp_path: Path, private_state: Path
) -> None:
    driver = Driver(stack="multicloud", root=multicloud_project(tmp_path), mode="plan")
    resolved = driver.resolve_metric_outputs(driver.load_config())
    assert resolved.unresolved[("checkout", "healthy_hosts")] == (
        "stack multicloud, pool checkout, metric healthy_hosts: dimension TargetGroup refers to "
        "stack output pools.checkout.ids.primary.target_group, but the backend "
        f"file://{private_state / 'backend'} holds no deployment of stack multicloud yet "
        "(deployed to another backend? set driver.backend_url to that one; not deployed? run "
        "`pulumi up`)"
    )
    # The queue metric names a queue the user chose: it is collected as written.
    assert ("checkout", "queue") not in resolved.unresolved


def test_the_outputs_are_read_through_the_executor_that_runs_up(tmp_path: Path) -> None:
    ids = {
        "autoscaling_group": "checkout-primary-asg-1a2b3c4",
        "load_balancer": "net/checkout-primary-front-nlb-5d6/50dc6c495c0c9188",
        "target_group": "targetgroup/checkout-primary-front-tg-7e8/73e2d6bc24d8a067",
    }
    executor = ReadsOutputs({"checkout": {"ids": {"primary": ids, "mirror": {}}}})
    driver = Driver(
        stack="multicloud", root=multicloud_project(tmp_path), mode="plan", executor=executor
    )
    resolved = driver.resolve_metric_outputs(driver.load_config())
    assert resolved.unresolved == {}
    assert_reads_the_primarys_ids(resolved.config, ids)
    assert executor.reads == 1


def test_a_stack_without_references_never_reads_the_outputs(tmp_path: Path, project: Path) -> None:
    executor = ReadsOutputs(None)
    driver = Driver(stack="demo", root=project, mode="plan", executor=executor)
    config = driver.load_config()
    assert driver.resolve_metric_outputs(config).config is config
    assert executor.reads == 0


def test_a_stack_never_deployed_says_so(tmp_path: Path) -> None:
    driver = Driver(
        stack="multicloud",
        root=multicloud_project(tmp_path),
        mode="plan",
        executor=ReadsOutputs(None),
    )
    resolved = driver.resolve_metric_outputs(driver.load_config())
    assert resolved.unresolved[("checkout", "cpu")].endswith(
        "refers to stack output pools.checkout.ids.primary.autoscaling_group, but the stack "
        "has no outputs yet (has it been deployed with `pulumi up`?)"
    )
