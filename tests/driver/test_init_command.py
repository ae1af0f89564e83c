"""``mirrorcast init`` writes a stack file the config model accepts, for every placement (issue 17 item 6).

The file is checked with the project's own loader and pydantic model (``infra.config``), the
contract every other command reads, and then planned on: ``mirrorcast plan`` must run on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from driver.cli import app
from infra.config import BalancerKind, Cloud, load_stack_file

runner = CliRunner()


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    return project


PLACEMENTS = [
    # (flags, expected mirror placement, expected balancer kind)
    (["--cloud", "aws", "--region", "us-east-1"], "same-region", "alb"),
    (
        ["--cloud", "aws", "--region", "us-east-1", "--mirror-region", "us-west-2"],
        "cross-region",
        "route53",
    ),
    (["--cloud", "gcp", "--region", "europe-west1"], "same-region", "gcp_url_map"),
    (
        ["--cloud", "azure", "--region", "westeurope", "--mirror-region", "northeurope"],
        "cross-region",
        "azure_traffic_manager",
    ),
    (
        [
            "--cloud",
            "aws",
            "--region",
            "eu-west-1",
            "--mirror-cloud",
            "gcp",
            "--mirror-region",
            "europe-west1",
        ],
        "cross-cloud",
        "route53",
    ),
]


@pytest.mark.parametrize(("flags", "placement", "balancer"), PLACEMENTS)
@pytest.mark.parametrize(
    "source", ["prometheus", "cloudwatch", "azure_monitor", "gcp_monitoring", "file"]
)
def test_init_writes_a_stack_the_config_model_accepts(
    in_project: Path, flags: list[str], placement: str, balancer: str, source: str
) -> None:
    result = runner.invoke(app, ["init", "--stack", "mine", *flags, "--metrics", source])

    assert result.exit_code == 0, result.output
    path = in_project / "stacks" / "Pulumi.mine.yaml"
    config = load_stack_file(path)
    pool = config.pools["web"]
    assert pool.mirror_placement == placement
    assert pool.balancer.kind is BalancerKind(balancer)
    assert pool.primary.cloud is Cloud(flags[1])
    assert config.metrics.type == source
    text = path.read_text()
    assert text.startswith("# Stack mine, written by `mirrorcast init`")
    assert "# REPLACE" in text
    assert "mirrorcast plan --stack mine" in result.stdout  # the next step is named


def test_the_written_stack_is_planned_on(in_project: Path) -> None:
    """A file source over the demo recording: the new stack goes straight to ``plan``."""
    written = runner.invoke(
        app,
        ["init", "--stack", "mine", "--cloud", "aws", "--region", "us-east-1", "--metrics", "file"],
    )
    assert written.exit_code == 0, written.output
    path = in_project / "stacks" / "Pulumi.mine.yaml"
    path.write_text(
        path.read_text()
        .replace("path: metrics/mine.csv", "path: examples/demo/metrics.csv")
        .replace("history: 14d", "history: 3d\n    models: [seasonal_naive]")
    )

    planned = runner.invoke(app, ["plan", "--stack", "mine", "--json"])

    assert planned.exit_code == 0, planned.output


def test_the_next_step_names_the_extra_a_source_needs(in_project: Path) -> None:
    result = runner.invoke(
        app,
        [
            "init",
            "--stack",
            "mine",
            "--cloud",
            "azure",
            "--region",
            "westeurope",
            "--metrics",
            "azure_monitor",
        ],
    )

    assert result.exit_code == 0, result.output
    assert "pip install -e '.[clouds]'" in result.stdout


def test_a_combination_the_model_refuses_is_reported_and_nothing_is_written(
    in_project: Path,
) -> None:
    flags = ["--cloud", "aws", "--region", "us-east-1", "--mirror-region", "us-west-2"]
    result = runner.invoke(
        app, ["init", "--stack", "mine", *flags, "--balancer", "alb", "--metrics", "cloudwatch"]
    )

    assert result.exit_code == 2
    assert "alb is regional" in result.output
    assert not (in_project / "stacks" / "Pulumi.mine.yaml").exists()


def test_an_existing_stack_is_not_overwritten_without_force(in_project: Path) -> None:
    before = (in_project / "stacks" / "Pulumi.demo.yaml").read_bytes()

    result = runner.invoke(
        app, ["init", "--stack", "demo", "--cloud", "aws", "--region", "us-east-1"]
    )

    assert result.exit_code == 2 and "exists" in result.output
    assert (in_project / "stacks" / "Pulumi.demo.yaml").read_bytes() == before


def test_an_unknown_cloud_names_the_option(in_project: Path) -> None:
    result = runner.invoke(app, ["init", "--stack", "mine", "--cloud", "ibm"])

    assert result.exit_code == 2 and "--cloud" in result.output
