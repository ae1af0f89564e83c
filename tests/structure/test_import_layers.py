"""The layers docs/architecture.md draws hold: checked by import-linter (pyproject.toml) in
scripts/test, and here the behaviour they exist for: loading a stack is cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.import_contracts import PrivateModulesContract, is_private, package_of

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["infra.config", "infra", "forecasting", "policies", "driver"]


def _modules_after(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


class TestLoadingAStack:
    def test_loading_and_validating_a_stack_imports_neither_pandas_nor_forecasting(self) -> None:
        # The Pulumi program loads the stack config on every `pulumi up`; before the layers were
        # enforced the rule checks imported policies, hence forecasting, pandas and the engine.
        modules = _modules_after(
            "from infra.config import load_stack_file\n"
            "config = load_stack_file('stacks/Pulumi.multicloud.yaml')\n"
            "assert any(p.rules for p in config.pools.values())  # the rule checks did run\n"
        )
        heavy = ("pandas", "statsforecast", "forecasting", "policies", "driver", "sqlalchemy")
        assert sorted(m for m in modules if m.split(".")[0] in heavy) == []

    def test_a_half_written_stack_is_checked_without_loading_a_cli_command(self) -> None:
        # The loader fills missing keys with `mirrorcast init`'s placeholders to report every
        # problem at once (tests/driver/test_first_hour.py); the template lives in
        # driver.stack_template, so the driver's loader depends on no command module.
        modules = _modules_after(
            "from pathlib import Path\n"
            "from infra.config import ConfigError\n"
            "from driver.stack_config import load_driver_config_text\n"
            "text = ('config:\\n  mirrorcast:pools:\\n    web:\\n      primary:\\n'\n"
            "        '        cloud: aws\\n        region: us-east-1\\n'\n"
            "        '        network: {vpc_id: vpc-0123456789abcdef0}\\n'\n"
            "        '      mirror:\\n        percent: 50\\n        location: {region: us-west-2}\\n'\n"
            "        '      balancer:\\n        kind: alb\\n')\n"
            "try:\n"
            "    load_driver_config_text(text, source='half.yaml', stack='half', root=Path('.'))\n"
            "except ConfigError as error:\n"
            "    messages = [issue.message for issue in error.issues]\n"
            "assert 'a aws network needs subnet_ids' in messages  # the placeholders were used\n"
        )
        assert "driver.stack_template" in modules
        assert sorted(m for m in modules if m.startswith(("driver.commands", "typer"))) == []


class _Graph:
    """The two questions the contract asks of grimp's import graph, over a fixed set of edges."""

    def __init__(self, edges: dict[str, set[str]]) -> None:
        self.edges = edges
        self.modules = set(edges) | {m for targets in edges.values() for m in targets}

    def find_modules_directly_imported_by(self, module: str) -> set[str]:
        return self.edges.get(module, set())

    def get_import_details(self, *, importer: str, imported: str) -> list[dict[str, Any]]:
        return [{"line_number": 7}]


def _check(edges: dict[str, set[str]]) -> list[tuple[str, str, int | None]]:
    contract = PrivateModulesContract(
        name="private", session_options={}, contract_options={"packages": PACKAGES}
    )
    return contract.check(_Graph(edges), verbose=False).metadata["violations"]


class TestPrivateModulesContract:
    def test_a_private_module_is_private_to_its_own_package(self) -> None:
        assert package_of("infra.config._model", PACKAGES) == "infra.config"
        assert package_of("infra._common", PACKAGES) == "infra"
        assert is_private("._model") and not is_private(".__main__")

    def test_imports_inside_a_package_are_allowed(self) -> None:
        assert (
            _check(
                {
                    "policies._planner.sizing": {"policies._evaluate"},
                    "forecasting.fits": {"forecasting.models._imports"},
                    "infra.aws": {"infra._common", "infra.config"},
                }
            )
            == []
        )

    def test_reaching_into_another_packages_private_module_is_reported(self) -> None:
        assert _check(
            {
                "driver.journal": {"policies._plan", "policies"},
                "infra.aws": {"infra.config._model"},
                "policies._evaluate": {"forecasting._result", "pandas"},
            }
        ) == [
            ("driver.journal", "policies._plan", 7),
            ("infra.aws", "infra.config._model", 7),
            ("policies._evaluate", "forecasting._result", 7),
        ]


class TestTheBacktestAlone:
    def test_importing_the_backtest_loads_no_service_journal_or_metrics(self) -> None:
        # The import-linter contract covers driver.backtest's own imports; this covers the
        # package it sits in (driver/__init__ loads its names lazily).
        modules = _modules_after("import driver.backtest\n")
        service = ("driver.service", "driver.journal", "driver.automation", "driver.cli")
        assert sorted(m for m in modules if m in service) == []
        assert (
            sorted(m for m in modules if m.split(".")[0] in ("sqlalchemy", "prometheus_client"))
            == []
        )
