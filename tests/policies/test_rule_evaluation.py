"""How rules evaluate: reactive windows, hysteresis, calendar events, untrusted forecasts."""

from __future__ import annotations

from datetime import timedelta

from policy_builders import T0, demo_config, demo_with, flat, forecast, series, step_plan

from policies import PlannerMemory, PoolView, evaluate_rule

MIN5 = timedelta(minutes=5)

CPU_NOW = {
    "name": "cpu-now",
    "when": "current(cpu) > 90% for 5m",
    "weight": 5,
    "actions": [
        {"type": "activate_mirror"},
        {"type": "shift_weights", "mirror": 50, "ramp": {"mode": "immediate"}},
    ],
}


def _view(cpu, *, forecasts=None, events=frozenset(), config=None):  # type: ignore[no-untyped-def]
    config = config or demo_config()
    return PoolView(
        name="web",
        spec=config.pools["web"],
        now=T0,
        current={"cpu": cpu},
        forecasts=forecasts or {},
        active_events=events,
        horizon=timedelta(hours=1),
        max_staleness=timedelta(minutes=30),
    )


def _rule(name: str):  # type: ignore[no-untyped-def]
    return next(r for r in demo_config().pools["web"].rules if r.name == name)


def _eval(name, view, *, fired_before=False):  # type: ignore[no-untyped-def]
    return evaluate_rule(
        _rule(name), view, fired_before=fired_before, lead=timedelta(minutes=2), hysteresis=5
    )


def test_reactive_rule_fires_only_when_the_condition_held_for_the_whole_window() -> None:
    held = series([92, 93, 95, 91, 94, 96], step=timedelta(minutes=1))
    assert _eval("cpu-now", _view(held)).fired

    dipped = series([92, 93, 85, 91, 94, 96], step=timedelta(minutes=1))
    result = _eval("cpu-now", _view(dipped))
    assert not result.fired and "lowest over 5m 85" in result.detail


def test_reactive_window_needs_data_reaching_back_over_the_window() -> None:
    short = series([95, 96], step=timedelta(minutes=1))
    result = _eval("cpu-now", _view(short))
    assert not result.fired and "cover only 1m of the 5m window" in result.detail


def test_stale_observations_never_fire_a_rule() -> None:
    old = flat(99, end=T0 - timedelta(hours=1))
    result = _eval("cpu-now", _view(old))
    assert not result.fired and "stale" in result.detail


def test_hysteresis_keeps_a_fired_rule_fired_until_the_value_drops_below_threshold_minus_margin() -> (
    None
):
    hovering = series([88, 87, 89, 88, 86, 88])  # below 90, above 90 - 5
    assert not _eval("cpu-now", _view(hovering)).fired  # must rise above 90 to fire
    assert _eval("cpu-now", _view(hovering), fired_before=True).fired  # stays fired
    dropped = series([88, 87, 84, 88, 86, 88])
    assert not _eval("cpu-now", _view(dropped), fired_before=True).fired


def test_a_value_hovering_at_the_threshold_does_not_flap_the_mirror() -> None:
    config = demo_with(rules=[CPU_NOW])
    memory = PlannerMemory()
    states = []
    values = [91, 89, 91, 88, 90.5, 87, 91, 89]  # hovering around 90
    for i, value in enumerate(values):
        now = T0 + MIN5 * i
        result = step_plan(config, now=now, cpu=flat(value, end=now), memory=memory, ready=True)
        config, memory = result.stack_config, result.memory
        states.append(memory.pools["web"].rule_state["cpu-now"])
    assert states == [True] * len(values)  # fired once, never cleared, never re-fired
    assert len(memory.pools["web"].activations) == 1


def test_during_reads_the_calendar_events_in_effect() -> None:
    rule = {
        "name": "campaign",
        "when": "during(campaign) and current(cpu) > 50%",
        "actions": [{"type": "activate_mirror"}],
    }
    config = demo_with(rules=[rule])
    assert step_plan(config, now=T0, cpu=flat(60)).empty
    fired = step_plan(config, now=T0, cpu=flat(60), events=frozenset({"campaign"}))
    assert fired.rules[0].fired and "during(campaign): active" in fired.rules[0].detail


def test_predicted_against_current_compares_the_forecast_with_a_multiple_of_now() -> None:
    rule = {
        "name": "rps-doubles",
        "when": "predicted(rps, p95) > 1.5 * current(rps) within 1h",
        "actions": [{"type": "activate_mirror"}],
    }
    config = demo_with(rules=[rule])
    rps_now = flat(400)
    rising = forecast([400, 450, 500, 580, 600], metric="rps", spread={50: 0, 95: 20})
    steady = forecast([400, 410, 420, 430, 440], metric="rps", spread={50: 0, 95: 20})
    assert (
        step_plan(config, now=T0, extra_current={"rps": rps_now}, extra_forecasts={"rps": rising})
        .rules[0]
        .fired
    )
    assert (
        not step_plan(
            config, now=T0, extra_current={"rps": rps_now}, extra_forecasts={"rps": steady}
        )
        .rules[0]
        .fired
    )


# --------------------------------------------------------------------------- untrusted forecasts


def test_untrusted_forecast_never_silently_triggers_a_predictive_rule() -> None:
    spike = forecast([90] * 12, trusted=False, reason="history shorter than two seasons")
    result = step_plan(demo_config(), now=T0, cpu_forecast=spike)
    assert result.empty
    outcome = next(o for o in result.rules if o.rule == "predicted-cpu")
    assert outcome.status == "untrusted_fallback" and not outcome.fired
    assert "history shorter than two seasons" in outcome.detail
    assert "on_untrusted=reactive" in outcome.detail


def test_untrusted_forecast_falls_back_to_the_rules_reactive_terms() -> None:
    rule = {
        "name": "either",
        "when": "predicted(cpu, p90) > 80% within 30m or current(cpu) > 85%",
        "actions": [{"type": "activate_mirror"}],
    }
    config = demo_with(rules=[rule])
    untrusted = forecast([50] * 12, trusted=False, reason="degraded source")
    hot = step_plan(config, now=T0, cpu=flat(90), cpu_forecast=untrusted)
    assert hot.rules[0].fired and hot.rules[0].status == "untrusted_fallback"
    assert hot.stack_config.pools["web"].mirror.state == "active"
    cool = step_plan(config, now=T0, cpu=flat(60), cpu_forecast=untrusted)
    assert not cool.rules[0].fired and cool.rules[0].status == "untrusted_fallback"


def test_untrusted_forecast_never_silently_suppresses_either() -> None:
    # 'and' with an untrusted term: the reactive part alone decides, and the outcome says so.
    rule = {
        "name": "both",
        "when": "predicted(cpu, p90) < 50% within 30m and current(cpu) > 85%",
        "actions": [{"type": "activate_mirror"}],
    }
    config = demo_with(rules=[rule])
    result = step_plan(config, now=T0, cpu=flat(90), cpu_forecast=None)
    assert result.rules[0].fired and "no forecast for cpu" in result.rules[0].detail


def test_on_untrusted_hold_keeps_last_cycles_decision() -> None:
    rule = {
        "name": "hold-me",
        "when": "predicted(cpu, p90) > 80% within 30m",
        "on_untrusted": "hold",
        "actions": [{"type": "activate_mirror"}],
    }
    config = demo_with(rules=[rule])
    memory = PlannerMemory.model_validate({"pools": {"web": {"rule_state": {"hold-me": True}}}})
    untrusted = forecast([50] * 12, trusted=False)
    held = step_plan(config, now=T0, cpu_forecast=untrusted, memory=memory)
    assert held.rules[0].fired and "on_untrusted=hold" in held.rules[0].detail
    not_held = step_plan(config, now=T0, cpu_forecast=untrusted)
    assert not not_held.rules[0].fired


def test_on_untrusted_fire_treats_the_rule_as_fired_and_says_so() -> None:
    rule = {
        "name": "cautious",
        "when": "predicted(cpu, p90) > 80% within 30m",
        "on_untrusted": "fire",
        "actions": [{"type": "activate_mirror"}],
    }
    config = demo_with(rules=[rule])
    result = step_plan(config, now=T0, cpu_forecast=forecast([10] * 12, trusted=False))
    assert result.rules[0].fired and result.rules[0].status == "untrusted_fallback"
    assert result.stack_config.pools["web"].mirror.state == "active"


def test_a_stale_forecast_counts_as_untrusted() -> None:
    old = forecast([90] * 30, issued_at=T0 - timedelta(hours=2))
    outcome = next(
        o
        for o in step_plan(demo_config(), now=T0, cpu_forecast=old).rules
        if o.rule == "predicted-cpu"
    )
    assert outcome.status == "untrusted_fallback" and "stale" in outcome.detail


def test_observations_without_a_timezone_are_refused_loudly() -> None:
    import pandas as pd
    import pytest

    naive = pd.Series([95.0] * 6, index=pd.date_range("2026-11-28 11:55", periods=6, freq="1min"))
    with pytest.raises(ValueError, match="timezone-aware"):
        _eval("cpu-now", _view(naive))


def test_the_reactive_window_includes_its_start_and_ignores_what_comes_after_now() -> None:
    # Observations are cut by binary search on the time-ordered index (issue 16: masks over two
    # weeks of points cost milliseconds per pool): the edges must stay where they were.
    after_now = series([92, 93, 94, 95, 96, 97, 50, 50], end=T0 + 2 * timedelta(minutes=1))
    assert _eval("cpu-now", _view(after_now)).fired  # the two 50s lie after now

    dip_at_start = series([50, 93, 94, 95, 96, 97])  # T0-5m .. T0: the window's first point
    result = _eval("cpu-now", _view(dip_at_start))
    assert not result.fired and "lowest over 5m 50" in result.detail

    dip_before_start = series([50, 92, 93, 94, 95, 96, 97])  # the 50 is at T0-6m
    assert _eval("cpu-now", _view(dip_before_start)).fired


def test_disordered_observations_evaluate_as_the_same_points_in_time_order() -> None:
    ordered = series([92, 93, 85, 91, 94, 96, 97, 98], end=T0 + timedelta(minutes=2))
    shuffled = ordered.iloc[[5, 0, 7, 2, 6, 1, 4, 3]]
    assert not shuffled.index.is_monotonic_increasing
    first, second = _eval("cpu-now", _view(ordered)), _eval("cpu-now", _view(shuffled))
    assert (first.fired, first.detail) == (second.fired, second.detail)
    assert not first.fired and "lowest over 5m 85" in first.detail
