"""Stack files load with ruamel's C parser, and give what the round-trip load gives.

The round-trip load (pure Python) is the reference: it is what every stack file was read with
before, and what the config editor writes back with. The C parser's load must give the same
values of the same types on every document it accepts, and leave the rest to the round-trip
load (``infra/config/_loader.py``, ``_fast_load``).
"""

from __future__ import annotations

import io
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from infra.config import ConfigError, config_from_text
from infra.config import _loader as loader

ROOT = Path(__file__).resolve().parents[2]

PLAIN_SCALARS = [
    # YAML 1.1 booleans and octals that YAML 1.2 (ruamel's default) reads as strings and decimals.
    *("on", "off", "yes", "no", "y", "n", "Yes", "NO", "0777", "010", "190:20:30", "1:30"),
    # YAML 1.2 core schema forms.
    *("true", "False", "TRUE", "null", "~", "Null", "0o17", "0x1F", "0b101", "1_000", "+12"),
    *("-0", "1e3", "1.0e+3", ".5", "3.", ".inf", "-.Inf", ".NaN", "2001-12-14"),
    *("2001-12-14T21:59:43.10-05:00", "2026-12-02 10:00:00"),
    # What stack files hold.
    *("5m", "14d", "1h", "p90", "10%", "us-east-1", "a b", "seasonal_naive", "0.75", "100"),
]


def _typed(value: Any) -> Any:
    """``value`` with every scalar's base type spelled out (True is not 1; NaN equals NaN)."""
    if isinstance(value, dict):
        return {str(k): _typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_typed(v) for v in value]
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", int(value))
    if isinstance(value, float):
        return ("nan",) if math.isnan(value) else ("float", float(value))
    if isinstance(value, datetime):
        return ("datetime", value.isoformat())
    if isinstance(value, date):
        return ("date", value.isoformat())
    if isinstance(value, str):
        return ("str", str(value))
    assert value is None, f"unexpected {type(value).__name__}"
    return None


def _round_trip(text: str) -> Any:
    return YAML(typ="rt").load(io.StringIO(text))


keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
scalars = st.sampled_from(PLAIN_SCALARS) | st.sampled_from(PLAIN_SCALARS).map(repr)
trees = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return str(value)


def _block(value: Any, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(value, dict) and value:
        return "".join(
            f"{pad}{k}:\n{_block(v, indent + 2)}"
            if isinstance(v, dict | list) and v
            else f"{pad}{k}: {_flow(v)}\n"
            for k, v in value.items()
        )
    if isinstance(value, list) and value:
        return "".join(
            f"{pad}-\n{_block(v, indent + 2)}"
            if isinstance(v, dict | list) and v
            else f"{pad}- {_flow(v)}\n"
            for v in value
        )
    return f"{pad}{_flow(value)}\n"


class TestTheCParserGivesTheRoundTripValues:
    def test_the_c_parser_is_installed(self) -> None:
        # ruamel.yaml.clib is a declared dependency: without it every load is the slow one.
        assert loader._C_PARSER is not None

    @pytest.mark.parametrize("path", sorted((ROOT / "stacks").glob("Pulumi.*.yaml")), ids=str)
    def test_every_shipped_stack_file(self, path: Path) -> None:
        text = path.read_text()
        fast = loader._fast_load(text)
        assert fast is not loader._NOT_LOADED
        assert _typed(fast) == _typed(_round_trip(text))
        config_from_text(text, source=str(path))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tree=st.dictionaries(keys, trees, min_size=1, max_size=4), flow=st.booleans())
    def test_generated_documents(self, tree: dict[str, Any], flow: bool) -> None:
        # Plain and quoted scalars that YAML 1.1 and 1.2 read differently, in block and flow
        # style: wherever the C parser loads a document, it has the round-trip load's values.
        text = _flow(tree) + "\n" if flow else _block(tree)
        try:
            expected = _round_trip(text)
        except Exception:
            expected = loader._NOT_LOADED
        fast = loader._fast_load(text)
        if fast is not loader._NOT_LOADED:
            assert expected is not loader._NOT_LOADED, text
            assert _typed(fast) == _typed(expected), text


class TestDocumentsTheCParserReadsOtherwiseGoToTheRoundTripLoad:
    @pytest.mark.parametrize(
        "text",
        [
            # ruamel.yaml.clib ticket 29: the C parser ignores the version directive (here
            # YAML 1.1's `yes` is True and 010 is 8).
            "%YAML 1.1\n---\na: yes\nb: 010\n",
            # Merged keys come first from the C parser, after the mapping's own from ruamel's.
            "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n",
            # A YAML 1.2 flow mapping libyaml's 1.1 scanner refuses.
            "a: {b:c}\n",
        ],
        ids=["version directive", "merge keys", "1.2 flow scalar"],
    )
    def test_not_loaded_by_the_c_parser(self, text: str) -> None:
        assert loader._fast_load(text) is loader._NOT_LOADED
        assert _round_trip(text) is not None

    def test_an_invalid_value_is_named_with_its_line_and_column(self) -> None:
        # The C parser's load keeps no positions: the error comes from the round-trip document.
        text = "config:\n  mirrorcast:driver:\n    interval: 5m\n    mode: sometimes\n"
        with pytest.raises(ConfigError) as raised:
            config_from_text(text, source="Pulumi.x.yaml")
        issue = next(i for i in raised.value.issues if i.path.endswith("mode"))
        assert (issue.line, issue.column) == (4, 5)  # the key's line and column

    def test_a_duplicate_key_is_refused_with_its_position(self) -> None:
        text = "config:\n  mirrorcast:driver: {mode: plan}\n  mirrorcast:driver: {mode: apply}\n"
        with pytest.raises(ConfigError) as raised:
            config_from_text(text, source="Pulumi.x.yaml")
        assert raised.value.issues[0].line == 3
