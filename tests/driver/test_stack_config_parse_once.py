"""A long-running driver parses its stack config once, and again only when it changed.

Parsing costs about 7 ms per pool (ruamel round-trip, then pydantic): 70-85 s a cycle at
10,000 pools. Every edit must still be seen by the next cycle, including one that keeps the
file's size (a weight of 10 becoming 20) and one in a pool's ``rules_file``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from driver.service import Driver
from infra.config import ConfigError

RULE = (
    "- name: from-file\n"
    "  when: current(cpu) >= {threshold}%\n"
    "  actions:\n"
    "    - type: notify\n"
    "      message: rules file loaded\n"
)


def _driver(project: Path) -> Driver:
    return Driver(stack="demo", root=project, mode="plan")


def _stack(project: Path) -> Path:
    return project / "stacks" / "Pulumi.demo.yaml"


class TestUnchangedConfigIsNotParsedAgain:
    def test_cycles_on_an_unchanged_stack_reuse_the_parsed_config(self, project: Path) -> None:
        driver = _driver(project)
        first = driver.load_config()
        second = driver.load_config()

        assert second is first
        assert driver.stack_config.parses == 1  # the constructor's parse, reused since

    def test_a_one_shot_run_parses_the_stack_once(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The command used to parse the stack for its own settings, then the driver again.
        import driver.stack_config
        import infra.config._loader
        from driver.cli import app

        real = infra.config._loader.config_from_text
        parsed: list[str | None] = []

        def counting(text: str, *, source: str | None = None) -> object:
            parsed.append(source)
            return real(text, source=source)

        monkeypatch.setattr(infra.config._loader, "config_from_text", counting)
        monkeypatch.setattr(driver.stack_config, "config_from_text", counting)
        monkeypatch.chdir(project)
        done = CliRunner().invoke(app, ["run", "--stack", "demo", "--once", "--json"])

        assert done.exit_code == 0, done.output
        assert len(parsed) == 1, parsed


class TestEveryChangeIsSeen:
    def test_an_edit_that_keeps_the_file_size_is_seen_by_the_next_load(self, project: Path) -> None:
        driver = _driver(project)
        assert driver.load_config().pools["web"].mirror.percent == 50
        text = _stack(project).read_text()
        edited = text.replace("        percent: 50\n", "        percent: 60\n", 1)
        assert edited != text and len(edited) == len(text)
        _stack(project).write_text(edited)  # same size, likely the same mtime tick

        assert driver.load_config().pools["web"].mirror.percent == 60
        assert driver.stack_config.parses == 2

    def test_an_edit_of_a_rules_file_is_seen_by_the_next_load(self, project: Path) -> None:
        stack = _stack(project)
        stack.write_text(
            stack.read_text().replace(
                "      rules:\n", "      rules_file: web-rules.yaml\n      rules:\n", 1
            )
        )
        rules = project / "stacks" / "web-rules.yaml"
        rules.write_text(RULE.format(threshold=10))
        driver = _driver(project)

        def threshold() -> str:
            merged = {r.name: r for r in driver.load_config().pools["web"].rules}
            return merged["from-file"].when

        assert threshold() == "current(cpu) >= 10%"
        rules.write_text(RULE.format(threshold=20))
        assert threshold() == "current(cpu) >= 20%"
        assert driver.stack_config.parses == 2

    def test_a_broken_edit_fails_the_load_naming_the_file(self, project: Path) -> None:
        driver = _driver(project)
        driver.load_config()
        _stack(project).write_text("config:\n  mirrorcast:pools: [\n")

        with pytest.raises(ConfigError, match=r"Pulumi\.demo\.yaml"):
            driver.load_config()
