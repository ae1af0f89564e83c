"""The ``mirrorcast`` command line: every command, ``--json`` output, one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driver.automation import MISSING_CLI_MESSAGE
from driver.cli import app
from driver.commands.schema import config_schema

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run commands from the project copy, with a light stack (3 days, one model) beside demo."""
    text = (project / "stacks" / "Pulumi.demo.yaml").read_text()
    light = text.replace(
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 14d\n",
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 3d\n    models: [seasonal_naive]\n",
    )
    assert light != text
    (project / "stacks" / "Pulumi.light.yaml").write_text(light)
    monkeypatch.chdir(project)
    return project


def one_line_error(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_run_once_on_the_demo_stack_plans_end_to_end(in_project: Path) -> None:
    """The README's command: plan mode, file metrics, the real engine and planner.

    The demo decides at the end of its recording (Monday 13:55 UTC), half an hour before the
    early-access campaign of ``examples/demo/events.yaml``: the trusted cpu forecast, raised by
    the campaign, crosses 80% within the rule's window, so the predictive rule plans the mirror
    activation and a higher capacity floor while current cpu is far below the reactive rule.
    """
    result = runner.invoke(app, ["run", "--stack", "demo", "--once", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "plan" and report["stack"] == "demo"
    assert report["outcome"]["status"] == "planned"
    assert report["now"] == "2026-11-23T13:55:00+00:00"  # decided at the end of the recording
    assert report["notes"] and "file metrics end at" in report["notes"][0]
    # No cloud account here: the cloud's state is "not observed", said once, never invented.
    assert report["degraded"] == [
        "aws: not observed: no AWS credentials found (environment, profile or instance role) "
        "(web/primary, web/mirror, web/balancer not read)"
    ]
    forecasts = {f["metric"]: f for f in report["forecasts"]}
    assert set(forecasts) == {"cpu", "rps"}
    assert all(f["trusted"] and f["model"] != "seasonal_naive" for f in forecasts.values())

    rules = {r["rule"]: r for r in report["rules"]}
    assert set(rules) == {"predicted-cpu", "cpu-now"}
    assert rules["predicted-cpu"]["status"] == "fired", rules["predicted-cpu"]["detail"]
    assert "threshold 80: crosses at" in rules["predicted-cpu"]["detail"]
    assert rules["cpu-now"]["status"] == "not_fired"  # the reactive rule alone would wait
    assert {(d["action"], d["rule"]) for d in report["decisions"]} == {
        ("activate_mirror", "predicted-cpu"),
        ("scale_primary", "predicted-cpu"),
    }
    changes = {c["path"]: (c["old"], c["new"]) for c in report["changes"]}
    assert changes["pools.web.mirror.state"] == ("paused", "active")
    floor_before, floor_after = changes["pools.web.primary.capacity.min"]
    assert floor_before == 2 and floor_after > 4
    assert "predicted-cpu [fired" in report["explanation"]
    assert "scale_primary (predicted-cpu): p90 of cpu peaks at" in report["explanation"]

    history = runner.invoke(app, ["history", "--stack", "demo", "--json"])
    assert history.exit_code == 0
    (plan,) = json.loads(history.stdout)
    assert plan["id"] == report["plan_id"] and plan["status"] == "planned"


def test_run_once_prints_a_readable_summary(in_project: Path) -> None:
    result = runner.invoke(app, ["run", "--stack", "light", "--once"])

    assert result.exit_code == 0, result.output
    for heading in ("Forecasts (next 1h)", "Rules", "predicted-cpu", "Why", "planned:"):
        assert heading in result.stdout


def test_plan_prints_json_and_journals_nothing(in_project: Path) -> None:
    result = runner.invoke(
        app, ["plan", "--stack", "light", "--at", "2026-11-22T18:00:00Z", "--json"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["now"] == "2026-11-22T18:00:00+00:00" and report["plan_id"] is None
    history = runner.invoke(app, ["history", "--stack", "light", "--json"])
    assert json.loads(history.stdout) == []


def test_status_shows_mirrors_weights_capacity_and_requests(in_project: Path) -> None:
    requested = runner.invoke(app, ["rollback", "--stack", "demo", "--pool", "web", "--json"])
    assert requested.exit_code == 0, requested.output
    assert json.loads(requested.stdout)["honoured"] is False

    result = runner.invoke(app, ["status", "--stack", "demo", "--json"])

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    web = status["pools"]["web"]
    assert web["mirror_state"] == "paused" and web["weights"] == {"primary": 100, "mirror": 0}
    assert web["primary_capacity"] == {"min": 2, "max": 20, "desired": 4}
    assert [r["pool"] for r in status["pending_rollback_requests"]] == ["web"]
    table = runner.invoke(app, ["status", "--stack", "demo"])
    assert "web" in table.stdout and "100/0" in table.stdout


def test_forecast_prints_quantiles_as_json_and_plots_a_png(
    in_project: Path, tmp_path: Path
) -> None:
    args = [
        "forecast",
        "--stack",
        "light",
        "--pool",
        "web",
        "--metric",
        "cpu",
        "--at",
        "2026-11-22T18:00:00Z",
    ]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    (forecast,) = json.loads(result.stdout)
    assert forecast["metric"] == "cpu" and set(forecast["quantiles"]) >= {"50", "90"}
    assert len(forecast["times"]) == len(forecast["mean"]) > 0

    png = tmp_path / "web.png"
    plotted = runner.invoke(app, [*args, "--plot", str(png)])
    assert plotted.exit_code == 0, plotted.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_schema_is_the_models_json_schema_and_the_shipped_copy_is_current(in_project: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "pools" in schema["properties"] and schema["title"] == "mirrorcast stack config"

    written = runner.invoke(app, ["schema", "--write"])
    assert written.exit_code == 0
    assert json.loads((in_project / "stacks" / "schema.json").read_text()) == schema
    shipped = json.loads((REPO / "stacks" / "schema.json").read_text())
    assert shipped == config_schema(), (
        "run `mirrorcast schema --write` to refresh stacks/schema.json"
    )


def test_a_missing_stack_is_one_clear_line(in_project: Path) -> None:
    result = runner.invoke(app, ["status", "--stack", "nope"])
    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert "no stack file" in line and "stacks here: demo, light" in line


def test_a_bad_stack_file_names_the_file_line_and_key(in_project: Path) -> None:
    path = in_project / "stacks" / "Pulumi.demo.yaml"
    path.write_text(path.read_text().replace("percent: 50", "percent: 140"))

    result = runner.invoke(app, ["plan", "--stack", "demo"])

    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert "Pulumi.demo.yaml:" in line and "pools.web.mirror.percent" in line and "140" in line


def test_apply_mode_without_the_pulumi_cli_fails_at_start(
    in_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(in_project))
    result = runner.invoke(app, ["run", "--stack", "demo", "--mode", "apply", "--once"])
    assert result.exit_code == 2
    assert one_line_error(result.output) == f"error: {MISSING_CLI_MESSAGE}"


def test_rollback_of_an_unknown_pool_is_refused(in_project: Path) -> None:
    result = runner.invoke(app, ["rollback", "--stack", "demo", "--pool", "db"])
    assert result.exit_code == 2
    assert "has no pool 'db'" in one_line_error(result.output)


def test_a_bad_every_option_names_the_option(in_project: Path) -> None:
    result = runner.invoke(app, ["run", "--stack", "demo", "--every", "soon"])
    assert result.exit_code == 2
    assert "--every" in result.output and "duration" in result.output


def test_rollback_now_runs_a_cycle_here(in_project: Path) -> None:
    result = runner.invoke(
        app, ["rollback", "--stack", "light", "--pool", "web", "--now", "--mode", "plan", "--json"]
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cycle"]["mode"] == "plan" and data["cycle"]["plan_id"]
    assert "nothing to roll back" in data["cycle"]["explanation"]


def test_a_busy_metrics_port_stops_the_service_at_start(in_project: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = in_project / "stacks" / "Pulumi.light.yaml"
        path.write_text(
            path.read_text() + f"  mirrorcast:driver:\n    metrics_listen: 127.0.0.1:{port}\n"
        )
        result = runner.invoke(app, ["run", "--stack", "light"])

    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in line and "driver.metrics_listen" in line
