"""The CrossGuard policies: each wraps one plain check from ``checks`` (needs ``pulumi_policy``).

Kept apart from ``__main__.py`` so a test can build and call the policies' ``validate``
functions without constructing the ``PolicyPack`` (which starts a server and blocks).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.crossguard.checks import (
    PackSettings,
    check_capacity,
    check_cost_tags,
    check_region,
    check_stack_config,
    check_weighted_record_sets,
    check_weights,
    load_settings,
)

__all__ = ["STACK_FILE_ENV", "build_policies"]

logger = logging.getLogger(__name__)

STACK_FILE_ENV = "MIRRORCAST_STACK_FILE"
"""Environment variable naming the stack file (``stacks/Pulumi.<stack>.yaml``) the pack judges."""


def _stack_file() -> Path | None:
    named = os.environ.get(STACK_FILE_ENV)
    if named:
        return Path(named)
    stack = os.environ.get("PULUMI_STACK")
    if stack:
        candidate = Path(__file__).resolve().parents[2] / "stacks" / f"Pulumi.{stack}.yaml"
        if candidate.is_file():
            return candidate
    return None


def build_policies(
    stack_file: Path | str | None = None,
) -> list[Policy]:
    """The pack's policies, reading limits from ``stack_file`` (default: $MIRRORCAST_STACK_FILE).

    :param stack_file: the mirrorcast stack file; when none is found, one mandatory policy
        reports that instead of silently allowing everything.
    """
    path = Path(stack_file) if stack_file is not None else _stack_file()
    settings = PackSettings()
    config: dict[str, Any] = {}
    problem: str | None = None
    if path is None:
        problem = (
            f"set {STACK_FILE_ENV} to the stack file (e.g. stacks/Pulumi.demo.yaml) so the "
            "mirrorcast policies know the configured limits"
        )
    else:
        try:
            settings, config = load_settings(path)
        except (OSError, ValueError) as error:
            problem = f"cannot read the stack file {path}: {error}"

    def stack_config(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        if problem is not None:
            report_violation(problem, None)
            return
        for message in check_stack_config(config):
            report_violation(message, None)
        declared = [(r.resource_type, r.props) for r in args.resources]
        for message in check_weighted_record_sets(declared):
            report_violation(message, None)

    def resource(
        check: Callable[[str, Mapping[str, Any], PackSettings], list[str]],
    ) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            for message in check(args.resource_type, args.props, settings):
                report_violation(message, None)

        return validate

    def weights(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check_weights(args.resource_type, args.props):
            report_violation(message, None)

    mandatory = EnforcementLevel.MANDATORY
    return [
        StackValidationPolicy(
            name="mirrorcast-stack-config",
            description="Mirror percent 0-100, weights in range and not all zero, capacity within max, regions allowed, cost tags set.",
            validate=stack_config,
            enforcement_level=mandatory,
        ),
        ResourceValidationPolicy(
            name="mirrorcast-traffic-weights",
            description="Traffic weights within the product's range and not all zero.",
            validate=weights,
            enforcement_level=mandatory,
        ),
        ResourceValidationPolicy(
            name="mirrorcast-capacity-max",
            description="Instance counts never beyond the configured capacity.max.",
            validate=resource(check_capacity),
            enforcement_level=mandatory,
        ),
        ResourceValidationPolicy(
            name="mirrorcast-allowed-regions",
            description="Resources only in policy.allowed_regions.",
            validate=resource(check_region),
            enforcement_level=mandatory,
        ),
        ResourceValidationPolicy(
            name="mirrorcast-cost-tags",
            description="Cost-bearing resources carry every tag in policy.required_tags.",
            validate=resource(check_cost_tags),
            enforcement_level=mandatory,
        ),
    ]
