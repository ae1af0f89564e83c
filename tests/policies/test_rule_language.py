"""The rule language: what parses, what each error says, and load-time checks against the config."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_builders import DEMO_STACK, demo_config

from infra.config import ConfigError, config_from_text, load_stack_file
from policies import (
    MAX_RULE_LENGTH,
    And,
    Arithmetic,
    Comparison,
    Current,
    During,
    Not,
    Or,
    Predicted,
    Quantity,
    RuleError,
    RuleSyntaxError,
    check_rule,
    load_rules_files,
    parse_rule,
)

DEMO_TEXT = DEMO_STACK.read_text()


# --------------------------------------------------------------------------- what parses


def test_the_spec_examples_parse_into_the_expected_tree() -> None:
    assert parse_rule("predicted(cpu, p90) > 80% within 30m") == Comparison(
        Predicted("cpu", 90, 1, 11),
        ">",
        Quantity(80, "%", 1, 23),
        within=timedelta(minutes=30),
        for_=None,
        line=1,
        column=21,
    )
    reactive = parse_rule("current(cpu) > 90% for 5m")
    assert isinstance(reactive, Comparison) and reactive.for_ == timedelta(minutes=5)
    assert isinstance(reactive.left, Current)
    relative = parse_rule("predicted(rps, p95) > 1.5 * current(rps) within 1h")
    assert isinstance(relative, Comparison) and isinstance(relative.right, Arithmetic)
    assert relative.right.op == "*" and relative.within == timedelta(hours=1)
    assert parse_rule("during(campaign)") == During("campaign", 1, 8)


def test_and_binds_tighter_than_or_and_parentheses_and_not_group() -> None:
    tree = parse_rule("during(a) or during(b) and not (during(c) or during(d))")
    assert isinstance(tree, Or)
    assert isinstance(tree.operands[1], And)
    assert isinstance(tree.operands[1].operands[1], Not)
    assert isinstance(tree.operands[1].operands[1].operand, Or)


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("80%", 80, "%"),
        ("1.5", 1.5, None),
        ("400ms", 400, "ms"),
        ("120 rps", 120, "rps"),
        ("2s", 2, "s"),
    ],
)
def test_numbers_carry_units(text: str, value: float, unit: str | None) -> None:
    tree = parse_rule(f"current(x) > {text}")
    assert isinstance(tree, Comparison) and tree.right == Quantity(value, unit, 1, 14)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400)]
)
def test_windows_take_time_units(text: str, seconds: int) -> None:
    tree = parse_rule(f"predicted(cpu, p50) > 1 within {text}")
    assert isinstance(tree, Comparison) and tree.within == timedelta(seconds=seconds)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "line", "column", "expected"),
    [
        ("predicted(cpu, p90) > 80% within", 1, 33, "a number such as 80%, 1.5 or 30m"),
        ("predicted(cpu p90) > 1", 1, 15, "','"),
        ("current(cpu) > 90% fro 5m", 1, 20, "'for'"),
        ("current(cpu)", 1, 13, "a comparison (>, >=, <, <=)"),
        ("current(cpu) > 90% and\n  curent(cpu) > 3", 2, 3, "'current(...)'"),
    ],
)
def test_syntax_errors_give_line_column_and_what_was_expected(
    text: str, line: int, column: int, expected: str
) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(text)
    error = caught.value
    assert (error.line, error.column) == (line, column)
    assert expected in error.expected
    assert f"line {line}, column {column}" in str(error) and "expected" in str(error)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("current(cpu) > 5 within 3", "is not a duration"),
        ("current(cpu) > 5 for 10%", "is not a duration"),
        ("predicted(cpu, q90) > 5", "must be written p1 to p99"),
        ("predicted(cpu, p0) > 5", "must be written p1 to p99"),
        ("current(cpu) > 1 for 1m for 2m", "'for' is given twice"),
        ("not " * 60 + "during(x)", "nests too deeply"),
        ("current(cpu) > 1" + " + 1" * 900, "arithmetic operators in a row"),
        ("during(x) or " * 400 + "during(y)", "characters long"),
    ],
)
def test_impossible_rules_are_rule_errors(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rule(text)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("current(cpux) > 5", "unknown metric 'cpux'; this pool's metrics are cpu, rps", 9),
        ("current(rps) > 80%", "'80%' does not fit rps, which is measured in rps", 16),
        ("current(cpu) > 200 rps", "'200rps' does not fit cpu", 16),
        ("current(cpu) > current(rps)", "compares cpu (percent) with rps (rps)", 24),
        ("predicted(cpu, p97) > 80%", "forecasts do not produce p97", 11),
        ("current(cpu) > 80% within 5m", "'within' applies to predicted", 14),
        ("predicted(cpu, p90) > 80% for 5m", "'for' applies to current", 21),
        ("5 > 3", "no predicted(...) or current(...) term", 3),
        ("current(cpu) * current(rps) > 3", "multiplies two metrics", 14),
        ("current(rps) > 2rps * current(rps)", "carries a unit", 16),
    ],
)
def test_rules_are_checked_against_the_pools_metrics_units_and_quantiles(
    text: str, message: str, column: int
) -> None:
    pool = demo_config().pools["web"]
    with pytest.raises(RuleError) as caught:
        check_rule(parse_rule(text), metrics=pool.metrics, quantiles=[50, 80, 90, 95, 99])
    assert message in caught.value.message
    assert caught.value.column == column


def test_percent_on_a_ratio_metric_and_seconds_on_a_latency_metric_convert() -> None:
    from infra.config import MetricSpec

    metrics = {"errors": MetricSpec(unit="ratio"), "latency": MetricSpec(unit="ms")}
    check_rule(parse_rule("current(errors) > 5%"), metrics=metrics, quantiles=None)
    check_rule(parse_rule("current(latency) > 0.4s"), metrics=metrics, quantiles=None)
    with pytest.raises(RuleError, match="does not fit latency"):
        check_rule(parse_rule("current(latency) > 40%"), metrics=metrics, quantiles=None)


# --------------------------------------------------------------------------- at config load


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("predicted(cpux, p90) > 80% within 30m", "line 1, column 11: unknown metric 'cpux'"),
        ("predicted(cpu, p97) > 80% within 30m", "line 1, column 11: forecasts do not produce p97"),
        ("predicted(rps, p90) > 80% within 30m", "line 1, column 23: '80%' does not fit rps"),
        ("predicted(cpu, p90) >> 80% within 30m", "line 1, column 22: unexpected '>'; expected"),
    ],
)
def test_a_bad_rule_is_rejected_when_the_stack_is_loaded_with_its_key_path_and_position(
    bad: str, message: str
) -> None:
    text = DEMO_TEXT.replace("predicted(cpu, p90) > 80% within 30m", bad)
    with pytest.raises(ConfigError) as caught:
        config_from_text(text, source="Pulumi.demo.yaml")
    rendered = str(caught.value)
    # The position is the rule's own line in the demo stack file, wherever edits to the file put it.
    at = text.index(f"when: {bad}")
    line = 1 + text[:at].count("\n")
    column = 1 + at - (text.rfind("\n", 0, at) + 1)
    assert rendered.startswith(f"Pulumi.demo.yaml:{line}:{column}: pools.web.rules.0.when: "), (
        rendered
    )
    assert message in rendered
    assert "Traceback" not in rendered


def test_a_rule_already_accepted_is_checked_again_against_another_pools_units_and_quantiles() -> (
    None
):
    # Rule checks are cached per (rule text, metric units, forecast quantiles), because every
    # plan validates its stack again; a text accepted once must still fail where it does not fit.
    config_from_text(DEMO_TEXT, source="Pulumi.demo.yaml")
    other_unit = DEMO_TEXT.replace(
        "          unit: percent\n", "          unit: rps\n          per_instance_capacity: 1\n", 1
    )
    with pytest.raises(ConfigError, match="'80%' does not fit cpu"):
        config_from_text(other_unit, source="Pulumi.demo.yaml")
    fewer_quantiles = DEMO_TEXT.replace(
        "    history: 14d\n", "    history: 14d\n    quantiles: [50, 80]\n", 1
    )
    with pytest.raises(ConfigError, match="forecasts do not produce p90"):
        config_from_text(fewer_quantiles, source="Pulumi.demo.yaml")
    config_from_text(DEMO_TEXT, source="Pulumi.demo.yaml")


def test_scale_to_forecast_on_an_rps_metric_needs_per_instance_capacity() -> None:
    text = re.sub(r"\n *per_instance_capacity: [0-9.]+", "", DEMO_TEXT).replace(
        "              metric: cpu\n", "              metric: rps\n"
    )
    with pytest.raises(
        ConfigError, match=r"rules\.0\.actions\.2\.metric: sizing to the forecast of rps"
    ):
        config_from_text(text, source="demo.yaml")


def test_duplicate_rule_names_are_rejected() -> None:
    text = DEMO_TEXT.replace("name: cpu-now", "name: predicted-cpu")
    with pytest.raises(
        ConfigError, match=r"rules\.1\.name: rule name 'predicted-cpu' is already used"
    ):
        config_from_text(text, source="demo.yaml")


def test_every_shipped_stack_loads() -> None:
    for path in sorted((DEMO_STACK.parent).glob("Pulumi.*.yaml")):
        load_stack_file(path)


# --------------------------------------------------------------------------- rules files


def _stack_with_rules_file(tmp_path: Path, rules_yaml: str) -> Path:
    stack = tmp_path / "Pulumi.test.yaml"
    stack.write_text(
        DEMO_TEXT.replace("      rules:\n", "      rules_file: rules/web.yaml\n      rules:\n", 1)
    )
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "web.yaml").write_text(rules_yaml)
    return stack


def test_rules_file_rules_are_appended_to_the_pools_rules(tmp_path: Path) -> None:
    stack = _stack_with_rules_file(
        tmp_path,
        "- name: campaign\n  when: during(campaign)\n  weight: 3\n  actions:\n    - type: activate_mirror\n",
    )
    config = load_rules_files(load_stack_file(stack), stack_file=stack)
    assert [r.name for r in config.pools["web"].rules] == ["predicted-cpu", "cpu-now", "campaign"]


def test_a_bad_rule_in_a_rules_file_names_the_file_line_and_key(tmp_path: Path) -> None:
    stack = _stack_with_rules_file(
        tmp_path,
        "- name: ok\n  when: during(x)\n  actions: [{type: notify}]\n"
        "- name: bad\n  when: current(disk) > 5%\n  actions: [{type: notify}]\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_rules_files(load_stack_file(stack), stack_file=stack)
    rendered = str(caught.value)
    assert "web.yaml:5:3: 1.when: line 1, column 9: unknown metric 'disk'" in rendered


def test_a_missing_rules_file_says_where_it_was_looked_for(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.test.yaml"
    stack.write_text(
        DEMO_TEXT.replace("      rules:\n", "      rules_file: nowhere.yaml\n      rules:\n", 1)
    )
    with pytest.raises(ConfigError, match=r"pools\.web\.rules_file: no such file"):
        load_rules_files(load_stack_file(stack), stack_file=stack)


# --------------------------------------------------------------------------- fuzzing

_ALPHABET = st.sampled_from(
    [
        *"()<>=*/+-,.%01234567 \n\tpcmhsdx_",
        "predicted",
        "current",
        "during",
        "and",
        "or",
        "not",
        "within",
        "for",
        "cpu",
        "p90",
        "rps",
        "ms",
    ]
)


def _parse_or_rule_error(text: str) -> None:
    try:
        tree = parse_rule(text)
    except RuleError as error:
        assert error.line >= 1 and error.column >= 1 and error.message
        return
    try:
        pool = demo_config().pools["web"]
        check_rule(tree, metrics=pool.metrics, quantiles=[50, 90])
    except RuleError as error:
        assert error.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_gives_a_rule_or_a_rule_error(text: str) -> None:
    _parse_or_rule_error(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=60).map(" ".join))
def test_token_soup_gives_a_rule_or_a_rule_error(text: str) -> None:
    _parse_or_rule_error(text)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_RULE_LENGTH // 10))
def test_long_and_deep_rules_fail_fast_not_hang(depth: int) -> None:
    for text in ("(" * depth + "during(x)" + ")" * depth, "not " * depth + "during(x)"):
        _parse_or_rule_error(text)
