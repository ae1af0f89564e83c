"""The planner: ``plan(PlanningInput) -> Plan``. Pure; the driver and the backtest call the same code.

Each pool is in one of three phases, kept in :class:`~policies._plan.PoolMemory`:

- **idle**: rules may start an activation (mirror active, weights ramped, primary raised),
  within the activation cap, the cooldown and the cost cap. The pool's original driver keys
  are remembered then (:mod:`.activation`).
- **active**: the ramp advances one health-gated step per due cycle (:mod:`.ramps`); realised
  demand is compared with the triggering forecast (escalate when above, ramp down when well
  below: :mod:`.feedback`); a ``to_forecast`` floor follows the newest forecast
  (:mod:`.sizing`); when no demand has been seen for ``rollback_grace`` (or a rule or a
  person asks) a rollback starts (:mod:`.active`).
- **rolling back**: one step per cycle, in order: weights to the primary, drain, pause the
  mirror, restore the primary's remembered config exactly (:mod:`.rollback`).

Every phase works on one pool's :class:`~.work.PoolWork`, whose ``keys`` is the typed
:class:`~.keys.DriverKeys` record of what the driver may change; :mod:`.phases` picks the
phase for a pool, and this module runs it for every pool and validates the result.
"""

from __future__ import annotations

from infra.config import MirrorcastConfig, PoolSpec
from policies._explain import PoolReport, explain
from policies._plan import (
    ConfigChange,
    Decision,
    Notice,
    Plan,
    PlanningInput,
    PoolMemory,
    RuleOutcome,
)
from policies._planner.keys import DRIVER_KEYS, PATHS, DriverKeys
from policies._planner.phases import plan_pool
from policies._planner.work import PoolWork

__all__ = ["DRIVER_KEYS", "PATHS", "DriverKeys", "plan"]


def plan(inputs: PlanningInput) -> Plan:
    """Decide the next desired config for every pool, and say why.

    :param inputs: config, observations, forecasts, events, mirror health, memory, requests.
    :returns: the next config, the changed keys, decisions, rule outcomes, new memory and the
        explanation. The same input always gives the same plan.
    """
    config = inputs.config
    memory = inputs.memory.model_copy(deep=True)
    unknown = sorted(set(inputs.rollback_requested) - set(config.pools))
    if unknown:
        raise ValueError(
            f"rollback requested for unknown pool(s) {', '.join(unknown)}; pools are {', '.join(sorted(config.pools))}"
        )
    new_pools: dict[str, PoolSpec] = {}
    outcomes: list[RuleOutcome] = []
    decisions: list[Decision] = []
    notifications: list[str] = []
    notices: list[Notice] = []
    answered: list[str] = []
    reports: list[PoolReport] = []
    for name in sorted(config.pools):
        spec = config.pools[name]
        working, observed_note = _from_observed(spec, inputs.observed_desired.get(name))
        work = PoolWork(
            name=name,
            spec=working,
            inputs=inputs,
            # ``memory`` is this plan's own deep copy already: a second copy per pool protected
            # nothing (no phase reads another pool's memory) and cost a deepcopy per pool.
            memory=memory.pools.get(name) or PoolMemory(),
            keys=DriverKeys.of(working),
        )
        if observed_note:
            work.notes.append(observed_note)
        pool_outcomes = plan_pool(work, config)
        if working is not spec:
            _keep_configured_desired(work, spec)
        memory.pools[name] = work.memory
        # A pool whose driver keys the plan leaves as they are keeps its spec object, already
        # validated as part of ``config``: pydantic does not revalidate a model instance
        # (``revalidate_instances`` is "never" by default), so the whole-config validation below
        # re-checks only the pools the plan changed, plus every stack-level invariant.
        unchanged = work.keys == DriverKeys.of(spec)
        new_pools[name] = spec if unchanged else work.keys.applied_to(spec)
        outcomes.extend(pool_outcomes)
        decisions.extend(work.decisions)
        notifications.extend(work.notifications)
        notices.extend(work.notices)
        if work.rollback_answered:
            answered.append(name)
        reports.append(
            PoolReport(
                pool=name,
                outcomes=pool_outcomes,
                weights={r.name: r.weight for r in spec.rules},
                decisions=work.decisions,
                clips=work.clips,
                notes=work.notes,
            )
        )
    # Validating the whole result guards every invariant the config model states (weights sum to
    # 100, min <= desired <= max, no traffic to a paused mirror) on every plan.
    # Changed pools go in as plain data, so their validators run again; dumping and validating
    # all 300 pools of a stack was about 84 ms of each cycle (benchmarks/scale.py).
    data = config.model_dump(exclude={"pools"})
    data["pools"] = {
        name: pool if pool is config.pools[name] else pool.model_dump()
        for name, pool in new_pools.items()
    }
    stack_config = MirrorcastConfig.model_validate(data)
    changes = _diff(config, stack_config)
    return Plan(
        now=inputs.now,
        stack_config=stack_config,
        changes=changes,
        decisions=decisions,
        rules=outcomes,
        memory=memory,
        explanation=explain(inputs.now, reports, changes),
        notifications=notifications,
        notices=notices,
        rollbacks_answered=answered,
    )


_CAPACITY_DECISIONS = frozenset({"scale_primary", "escalate", "restore_primary"})


def _from_observed(spec: PoolSpec, observed: int | None) -> tuple[PoolSpec, str | None]:
    """The pool as the planner works on it: the primary at the size its cloud reports.

    When the cloud holds the primary at another desired size than the config (an autoscaler,
    a hand change, a refused or quota-limited scale-up), every sizing decision this cycle
    starts from what runs, and the plan says so.
    """
    capacity = spec.primary.capacity
    if observed is None or observed == capacity.desired:
        return spec, None
    bounded = min(max(observed, capacity.min), capacity.max)
    bounds = (
        f" (bounded to min {capacity.min} .. max {capacity.max})" if bounded != observed else ""
    )
    note = (
        f"observed: the cloud holds the primary at desired {observed}, the config says "
        f"{capacity.desired} (an autoscaler, a change outside Pulumi, or a scale-up the cloud "
        f"refused or a quota held back); this plan sizes from {bounded}{bounds}"
    )
    working = spec.model_copy(
        update={
            "primary": spec.primary.model_copy(
                update={"capacity": capacity.model_copy(update={"desired": bounded})}
            )
        }
    )
    return working, note


def _keep_configured_desired(work: PoolWork, spec: PoolSpec) -> None:
    """Write no observed size back into the config unless a capacity decision was taken.

    Sizing from the observed number must not, by itself, turn a difference the plan reports
    into a config change nobody decided.
    """
    if any(d.action in _CAPACITY_DECISIONS for d in work.decisions):
        return
    capacity = spec.primary.capacity
    keys = work.keys
    keys.capacity_desired = min(max(capacity.desired, keys.capacity_min), capacity.max)


def _diff(old: MirrorcastConfig, new: MirrorcastConfig) -> list[ConfigChange]:
    changes: list[ConfigChange] = []
    for name in sorted(old.pools):
        before = DriverKeys.of(old.pools[name]).as_paths()
        after = DriverKeys.of(new.pools[name]).as_paths()
        for key in DRIVER_KEYS:
            if before[key] != after[key]:
                changes.append(
                    ConfigChange(path=f"pools.{name}.{key}", old=before[key], new=after[key])
                )
    return changes
