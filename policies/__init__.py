"""Rules and planning: the rule language, weighted rules, guardrails, feedback and rollback.

``plan(PlanningInput) -> Plan`` is pure; the driver and the backtest call the very same code.
Import from here, not from the private modules::

    from policies import PlanningInput, plan, parse_rule
"""

from infra.config.rules import (
    MAX_RULE_DEPTH,
    MAX_RULE_LENGTH,
    And,
    Arithmetic,
    Comparison,
    Condition,
    Current,
    During,
    Not,
    Or,
    Predicted,
    Quantity,
    RuleError,
    RuleSyntaxError,
    Value,
    check_rule,
    parse_rule,
)
from policies._evaluate import PoolView, RuleEvaluation, Trigger, evaluate_rule
from policies._explain import PoolReport, explain
from policies._feedback import Feedback, assess, demand_present
from policies._guardrails import Clip
from policies._plan import (
    ConfigChange,
    Decision,
    MirrorHealth,
    Notice,
    Plan,
    PlannerMemory,
    PlanningInput,
    PoolMemory,
    PrimaryHealth,
    RampState,
    RuleOutcome,
)
from policies._planner import DRIVER_KEYS, DriverKeys, plan
from policies._resolve import Resolution, resolve
from policies._rules_file import MAX_RULES_FILE_BYTES, load_rules_files

__all__ = [
    "DRIVER_KEYS",
    "MAX_RULES_FILE_BYTES",
    "MAX_RULE_DEPTH",
    "MAX_RULE_LENGTH",
    "And",
    "Arithmetic",
    "Clip",
    "Comparison",
    "Condition",
    "ConfigChange",
    "Current",
    "Decision",
    "DriverKeys",
    "During",
    "Feedback",
    "MirrorHealth",
    "Not",
    "Notice",
    "Or",
    "Plan",
    "PlannerMemory",
    "PlanningInput",
    "PoolMemory",
    "PoolReport",
    "PoolView",
    "Predicted",
    "PrimaryHealth",
    "Quantity",
    "RampState",
    "Resolution",
    "RuleError",
    "RuleEvaluation",
    "RuleOutcome",
    "RuleSyntaxError",
    "Trigger",
    "Value",
    "assess",
    "check_rule",
    "demand_present",
    "evaluate_rule",
    "explain",
    "load_rules_files",
    "parse_rule",
    "plan",
    "resolve",
]
