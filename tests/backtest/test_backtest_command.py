"""``mirrorcast backtest``: the command on a real excerpt, its JSON, its plot and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from driver import cli
from driver.commands.backtest import register

RUNNER = CliRunner()


BASELINES = "reactive,scheduled-predictive,static-peak,oracle"


def app() -> typer.Typer:
    """The command on its own app, so the test does not depend on the other commands."""
    application = typer.Typer()

    @application.callback()
    def main() -> None:
        """mirrorcast (test)."""

    register(application)
    return application


def test_the_command_is_part_of_the_mirrorcast_cli() -> None:
    assert "driver.commands.backtest" in cli.COMMAND_MODULES


def test_backtest_on_a_real_excerpt_writes_json_and_a_plot(
    elb_excerpt: Path, tmp_path: Path
) -> None:
    out, png = tmp_path / "result.json", tmp_path / "result.png"
    result = RUNNER.invoke(
        app(),
        [
            "backtest",
            str(elb_excerpt),
            "--history",
            "3d",
            "--interval",
            "15m",
            "--json",
            str(out),
            "--plot",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "mirrorcast" in result.stdout and "oracle" in result.stdout
    document = json.loads(out.read_text())
    assert document["trace"] == "elb_request_count_8c0756_4days"
    assert document["scored_minutes"] > 1400
    assert list(document["strategies"]) == [
        "reactive",
        "scheduled-predictive",
        "static-peak",
        "mirrorcast",
        "oracle",
    ]
    for entry in document["strategies"].values():
        for key in (
            "underprovisioned_minutes",
            "instance_hours",
            "paused_instance_hours",
            "scaling_actions",
            "mirror_activations",
        ):
            assert isinstance(entry[key], int | float), key
    assert document["strategies"]["static-peak"]["underprovisioned_minutes"] == 0
    assert document["interval_minutes"] == 15
    assert document["strategies"]["mirrorcast"]["cycles"] > 95
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


def test_only_the_chosen_strategies_run(elb_excerpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = RUNNER.invoke(
        app(),
        [
            "backtest",
            str(elb_excerpt),
            "--history",
            "3d",
            "--strategies",
            "reactive,oracle",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert list(json.loads(out.read_text())["strategies"]) == ["reactive", "oracle"]


def test_timing_and_capacity_options_change_the_simulation(
    elb_excerpt: Path, tmp_path: Path
) -> None:
    fast, slow = tmp_path / "fast.json", tmp_path / "slow.json"
    for path, ready in ((fast, "1m"), (slow, "15m")):
        result = RUNNER.invoke(
            app(),
            [
                "backtest",
                str(elb_excerpt),
                "--history",
                "3d",
                "--strategies",
                "reactive",
                "--primary-ready",
                ready,
                "--instance-capacity",
                "20",
                "--json",
                str(path),
            ],
        )
        assert result.exit_code == 0, result.output
    a, b = (json.loads(p.read_text()) for p in (fast, slow))
    assert a["instance_capacity"] == 20
    assert (
        a["strategies"]["reactive"]["underprovisioned_minutes"]
        < b["strategies"]["reactive"]["underprovisioned_minutes"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategies", "reactive,magic"], "unknown strategy magic; choose from reactive,"),
        (["--value-column", "rps"], "no column 'rps' for --value-column"),
        (["--pool", "web"], "has no pool 'web'; pools are app"),
        (["--history", "soon"], "expected a duration"),
    ],
)
def test_bad_input_ends_in_one_clear_sentence(
    elb_excerpt: Path, args: list[str], message: str
) -> None:
    result = RUNNER.invoke(app(), ["backtest", str(elb_excerpt), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_bad_row_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:05,1O\n")
    result = RUNNER.invoke(app(), ["backtest", str(trace)])
    assert result.exit_code == 2
    assert f"{trace}: row 3, column 'value': '1O' is not a number" in " ".join(
        result.output.split()
    )


def test_a_bad_stack_file_is_reported_not_raised(elb_excerpt: Path, tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text("config:\n  mirrorcast:pools: {}\n")
    result = RUNNER.invoke(app(), ["backtest", str(elb_excerpt), "--config", str(stack)])
    assert result.exit_code == 2
    assert "Pulumi.bad.yaml" in result.output
    assert "Traceback" not in result.output


class TestTheOldPoliciesSpelling:
    """The baselines were called "policies" before; old scripts and JSON readers keep working."""

    def test_the_hidden_policies_flag_still_chooses_with_a_deprecation_line(
        self, elb_excerpt: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "r.json"
        result = RUNNER.invoke(
            app(),
            [
                "backtest",
                str(elb_excerpt),
                "--history",
                "3d",
                "--policies",
                "reactive",
                "--json",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "--policies is deprecated; use --strategies" in result.output
        assert list(json.loads(out.read_text())["strategies"]) == ["reactive"]

    def test_giving_both_spellings_is_refused(self, elb_excerpt: Path) -> None:
        result = RUNNER.invoke(
            app(),
            ["backtest", str(elb_excerpt), "--strategies", "reactive", "--policies", "oracle"],
        )
        assert result.exit_code == 2
        assert "give --strategies only" in result.output

    def test_the_json_document_keeps_the_old_key_with_the_same_entries(
        self, elb_excerpt: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "r.json"
        result = RUNNER.invoke(
            app(),
            [
                *(
                    "backtest",
                    str(elb_excerpt),
                    "--history",
                    "3d",
                    "--strategies",
                    "reactive,oracle",
                ),
                "--json",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        document = json.loads(out.read_text())
        assert document["policies"] == document["strategies"]

    def test_the_help_names_only_the_new_flag(self) -> None:
        result = RUNNER.invoke(app(), ["backtest", "--help"])
        assert "--strategies" in result.output
        assert "--policies" not in result.output
