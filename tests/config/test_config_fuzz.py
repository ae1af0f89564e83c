"""Fuzzed stack files never crash the loader: every failure is a ConfigError naming the problem."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.config import ConfigError, MirrorcastConfig, config_from_text

DEMO = (Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.demo.yaml").read_text()
LINES = DEMO.splitlines(keepends=True)


def _load(text: str) -> None:
    try:
        assert isinstance(config_from_text(text, source="fuzz.yaml"), MirrorcastConfig)
    except ConfigError as error:
        rendered = str(error)
        assert rendered.strip(), "a config error must say something"
        assert "Traceback" not in rendered
        for issue in error.issues:
            assert issue.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_gives_a_config_error_or_a_config(text: str) -> None:
    _load(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    line=st.integers(min_value=0, max_value=len(LINES) - 1),
    replacement=st.sampled_from(
        ["", "  x: 1\n", "- 3\n", "percent: -1\n", ": :\n", "\t\n", "'\n", "[\n", "{a: }\n"]
    ),
)
def test_mutated_demo_stack_fails_cleanly(line: int, replacement: str) -> None:
    mutated = [*LINES]
    mutated[line] = replacement
    _load("".join(mutated))


@settings(max_examples=100, deadline=None)
@given(
    value=st.one_of(
        st.integers(), st.floats(allow_nan=True), st.text(max_size=20), st.booleans(), st.none()
    )
)
def test_any_scalar_in_a_numeric_field_is_validated(value: object) -> None:
    _load(DEMO.replace("percent: 50", f"percent: {value!r}"))
