"""One error family: every error mirrorcast raises on purpose is a MirrorcastError, and every
command turns its user-error branch into one line and exit status 2, in one place."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import typer

from driver.commands._common import EXIT_USER_ERROR, user_errors
from infra.config import MirrorcastError, UserError

ROOT = Path(__file__).resolve().parents[2]

# The packages whose modules raise the project's errors; the Pulumi components (infra.aws, ...)
# only declare resources and infra/__main__ is the Pulumi program itself, so neither is walked.
PACKAGES = ("infra.config", "forecasting", "policies", "driver")


def _project_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if info.name.endswith(".__main__") or ".journal_migrations" in info.name:
                continue  # a program (the policy pack) or alembic's scripts, run, not imported
            try:
                module = importlib.import_module(info.name)
            except ImportError as exc:
                if (exc.name or "").split(".")[0] not in {p.split(".")[0] for p in PACKAGES}:
                    continue  # an optional dependency (a cloud SDK, torch) not installed here
                raise
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if (
                    issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                    and not obj.__name__.startswith("_")  # private control flow, never escapes
                ):
                    found.append(obj)
    return found


class TestTheFamily:
    def test_every_public_exception_class_is_a_mirrorcast_error(self) -> None:
        exceptions = _project_exceptions()
        assert len(exceptions) >= 17  # the count the issue measured
        outside = sorted(
            f"{e.__module__}.{e.__qualname__}"
            for e in exceptions
            if not issubclass(e, MirrorcastError)
        )
        assert outside == []

    @pytest.mark.parametrize(
        "name",
        [
            "infra.config.ConfigError",
            "policies.RuleError",
            "forecasting.errors.ForecastingError",
            "forecasting.sources.SourceError",
            "forecasting.events.EventFeedError",
            "driver.backtest.TraceError",
            "driver.backtest.errors.BacktestError",
            "driver.stack_yaml.StackFileError",
            "driver.gitops.GitError",
            "driver.journal.JournalError",
            "driver.executor.DriverError",
        ],
    )
    def test_errors_a_person_fixes_are_user_errors(self, name: str) -> None:
        module, _, attr = name.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), attr), UserError)

    def test_an_update_timeout_is_not_a_user_error(self) -> None:
        from driver.automation import UpdateTimeoutError

        assert issubclass(UpdateTimeoutError, MirrorcastError)
        assert not issubclass(UpdateTimeoutError, UserError)

    def test_the_builtin_bases_callers_caught_before_are_kept(self) -> None:
        from driver.journal import JournalError
        from policies import RuleError

        assert issubclass(RuleError, ValueError) and issubclass(JournalError, RuntimeError)


class _ToyUserError(UserError):
    """What a new module's error looks like: it only has to join the branch."""


class TestOnePlaceInTheCli:
    def test_any_user_error_becomes_one_line_and_exit_2(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(typer.Exit) as exit_info, user_errors():
            raise _ToyUserError("pools.web.mirror.percent: must be at most 100")
        assert exit_info.value.exit_code == EXIT_USER_ERROR
        assert "pools.web.mirror.percent: must be at most 100" in capsys.readouterr().err

    def test_an_error_that_is_not_a_user_error_keeps_its_traceback(self) -> None:
        with pytest.raises(ZeroDivisionError), user_errors():
            raise ZeroDivisionError("a defect")

    def test_no_command_catches_builtin_errors_wholesale(self) -> None:
        # `except (ValueError, RuntimeError)` turned defects into "user errors"; commands name
        # the family instead (driver/commands/_common.user_errors).
        offenders = []
        for path in sorted((ROOT / "driver" / "commands").glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Tuple):
                    names = {getattr(e, "id", None) for e in node.type.elts}
                    if {"ValueError", "RuntimeError"} <= names:
                        offenders.append(f"{path.name}:{node.lineno}")
        assert offenders == []

    def test_the_backtest_command_reports_a_bad_option_as_a_user_error(
        self, tmp_path: Path
    ) -> None:
        from typer.testing import CliRunner

        from driver.cli import app

        trace = tmp_path / "t.csv"
        trace.write_text("timestamp,rps\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\n")
        result = CliRunner().invoke(app, ["backtest", str(trace), "--slo-utilisation", "2"])
        assert result.exit_code == EXIT_USER_ERROR, result.output
        assert "--slo-utilisation must be in (0, 1], got 2.0" in result.output
