"""Starting ``mirrorcast`` is cheap: commands import only what they run.

A one-shot cycle (the CronJob and systemd-timer modes) and every ``--help`` pay the interpreter's
start plus their imports; before the lazy command table ``mirrorcast --help`` imported pandas,
scipy and statsforecast (with dask.dataframe) and took over a second. Each check runs in a fresh
interpreter, because the test process itself has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from driver import cli

REPO = Path(__file__).resolve().parents[2]

# The forecasting stack: what made the old start slow (measured with ``python -X importtime``).
FORECASTING_STACK = ("statsforecast", "scipy", "numba", "dask", "forecasting.engine")


def modules_after(argv: list[str], *, cwd: Path) -> set[str]:
    """The modules a fresh interpreter holds after running ``mirrorcast ARGV``."""
    probe = (
        "import json, sys\n"
        "from driver.cli import main\n"
        f"sys.argv = ['mirrorcast', *{argv!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('\\nMODULES=' + json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    marker = done.stderr.rfind("MODULES=")
    assert marker >= 0, done.stderr
    return set(json.loads(done.stderr[marker + len("MODULES=") :]))


def loaded(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in roots))


class TestHelpImportsNoCommand:
    def test_top_level_help_imports_no_command_module_nor_any_data_library(self) -> None:
        modules = modules_after(["--help"], cwd=REPO)

        assert loaded(modules, FORECASTING_STACK) == []
        assert loaded(modules, ("pandas", "numpy", "sqlalchemy", "pydantic", "infra")) == []
        assert loaded(modules, ("driver.commands.run", "driver.commands.backtest")) == []

    def test_a_commands_help_imports_that_command_alone(self) -> None:
        modules = modules_after(["status", "--help"], cwd=REPO)

        assert "driver.commands.status" in modules
        assert loaded(modules, ("driver.commands.run", "driver.commands.backtest")) == []
        assert loaded(modules, FORECASTING_STACK) == []


class TestStatusImportsNoForecasting:
    def test_status_reads_the_journal_without_the_forecasting_stack(self, project: Path) -> None:
        modules = modules_after(["status", "--stack", "demo", "--json"], cwd=project)

        assert "driver.journal" in modules  # it did run: the journal was opened
        assert loaded(modules, FORECASTING_STACK) == []
        assert loaded(modules, ("forecasting.sources", "driver.cycle")) == []

    def test_status_reads_no_cloud_unless_asked(self, project: Path) -> None:
        # The demo's pools are on AWS: reading them means boto3 and botocore's client builds.
        default = modules_after(["status", "--stack", "demo"], cwd=project)
        asked = modules_after(["status", "--stack", "demo", "--observe"], cwd=project)

        assert loaded(default, CLOUD_SDKS) == []
        assert "boto3" in asked


# statsforecast imports these at module level; a warm cycle applying kept fits needs none of them
# (forecasting/models/_imports.py). ``statsmodels`` itself (a 0.3 ms package __init__) may load.
STATSMODELS_HEAVY = ("statsmodels.api", "statsmodels.tsa", "statsmodels.base")
SCIPY_DEFERRED = ("scipy.stats", "scipy.optimize", "scipy.special", "scipy.linalg")
CLOUD_SDKS = ("boto3", "botocore", "azure", "google.cloud", "google.auth")


def kept_files(state: Path) -> dict[str, tuple[int, int]]:
    """Each kept fit and model choice under ``state``: (inode, mtime) change when rewritten."""
    models = state / "models"
    return {
        str(path.relative_to(models)): (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in sorted([*models.glob("fits/*.pkl"), *models.glob("selection/*.json")])
    }


class TestAWarmOneShotCycle:
    def test_it_imports_no_statsmodels_nor_fugue_and_neither_reselects_nor_refits(
        self, project: Path, private_state: Path
    ) -> None:
        once = ["run", "--stack", "demo", "--once"]
        modules_after(once, cwd=project)  # fills the caches: model choices and kept fits
        before = kept_files(private_state)
        modules = modules_after(once, cwd=project)

        assert "statsforecast.models" in modules  # it did forecast, from the kept fits
        assert loaded(modules, STATSMODELS_HEAVY) == []
        assert "scipy.signal" not in modules  # ARIMA's differencing: deferred too
        # The demo's series run Theta, whose normal intervals sample with numpy: no SciPy module
        # that statsforecast imports (stats alone was 0.45-0.6 s) is needed, so none loads.
        assert loaded(modules, SCIPY_DEFERRED) == []
        # statsforecast's backend for Spark, Dask and Ray frames and its engine factory: all
        # of fugue and fsspec (116 modules), which applying a kept fit never calls.
        assert loaded(modules, ("fugue", "fsspec", "statsforecast.distributed.fugue")) == []
        # A selection or a refit rewrites its file (atomically: a new inode).
        assert len(before) == 4 and kept_files(private_state) == before

    def test_kept_ets_fits_take_their_normal_quantiles_without_scipy_stats(
        self, project: Path
    ) -> None:
        # ETS's (and ARIMA's, CES's) normal intervals ask scipy.stats.norm for their z: the
        # same numbers come from scipy.special.ndtri (forecasting/models/_imports.py).
        stack = project / "stacks" / "Pulumi.demo.yaml"
        text = stack.read_text()
        stack.write_text(
            text.replace("    history: 14d\n", "    history: 14d\n    models: [auto_ets]\n")
        )
        once = ["run", "--stack", "demo", "--once"]
        modules_after(once, cwd=project)  # fills the caches (the fit itself imports scipy.stats)
        modules = modules_after(once, cwd=project)

        assert "statsforecast.ets" in modules and "scipy.special" in modules
        assert loaded(modules, ("scipy.stats", "scipy.optimize", "statsmodels.api")) == []

    def test_a_file_source_with_observation_off_loads_no_cloud_sdk(self, project: Path) -> None:
        stack = project / "stacks" / "Pulumi.demo.yaml"
        text = stack.read_text()
        stack.write_text(
            text.replace("config:\n", "config:\n  mirrorcast:driver:\n    observe: false\n", 1)
        )
        modules = modules_after(["run", "--stack", "demo", "--once"], cwd=project)

        assert "forecasting.sources._file" in modules  # it did read the metrics file
        assert loaded(modules, CLOUD_SDKS) == []


class TestTheCommandTable:
    def test_every_listed_summary_is_the_first_paragraph_of_its_commands_help(self) -> None:
        for name, (module, summary) in cli.COMMANDS.items():
            command = cli._load(module)[name]
            paragraph = (command.help or "").strip().split("\n\n")[0]
            first = " ".join(paragraph.split())
            assert first == summary, f"driver.cli.COMMANDS[{name!r}] should read {first!r}"

    def test_the_table_names_every_command_a_module_registers(self) -> None:
        for module in cli.COMMAND_MODULES:
            for name in cli._load(module):
                assert cli.COMMANDS.get(name, ("",))[0] == module, (
                    f"{module} registers {name!r}: add it to driver.cli.COMMANDS"
                )

    def test_help_lists_every_command_and_an_unknown_one_is_refused(self) -> None:
        runner = CliRunner()
        listing = runner.invoke(cli.app, ["--help"])
        unknown = runner.invoke(cli.app, ["no-such-command"])

        assert listing.exit_code == 0
        assert all(name in listing.output for name in cli.COMMANDS)
        assert unknown.exit_code == 2 and "No such command" in unknown.output
