"""Editing stack files in place: only changed keys differ, everything else survives."""

from __future__ import annotations

from pathlib import Path

import pytest

from driver.stack_yaml import StackFileError, edit_stack_text
from infra.config import config_from_text
from policies import ConfigChange

STACKS = Path(__file__).resolve().parents[2] / "stacks"


@pytest.mark.parametrize("path", sorted(STACKS.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_an_edit_without_changes_gives_back_the_file_byte_for_byte(path: Path) -> None:
    text = path.read_text()
    assert edit_stack_text(text, []) == text


def test_a_key_missing_from_the_file_is_added_under_its_parent() -> None:
    text = (STACKS / "Pulumi.demo.yaml").read_text()
    text = text.replace("        weights:\n          primary: 100\n          mirror: 0\n", "")

    edited = edit_stack_text(
        text, [ConfigChange(path="pools.web.balancer.weights.primary", old=100, new=100)]
    )

    assert "        weights:\n          primary: 100\n" in edited
    assert config_from_text(edited).pools["web"].balancer.weights.primary == 100


def test_a_path_through_a_scalar_is_refused_with_the_path() -> None:
    text = (STACKS / "Pulumi.demo.yaml").read_text()
    with pytest.raises(StackFileError, match=r"pools\.web\.mirror\.state is not a mapping"):
        edit_stack_text(text, [ConfigChange(path="pools.web.mirror.state.x", old=None, new=1)])
