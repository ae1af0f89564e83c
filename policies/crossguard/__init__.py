"""The CrossGuard policy pack (``pulumi preview --policy-pack policies/crossguard``).

The checks are plain functions in :mod:`policies.crossguard.checks`; ``__main__.py`` wraps them
in CrossGuard policies. Import the checks from here.
"""

from policies.crossguard.checks import (
    CAPACITY_TYPES,
    COST_TAGGED_TYPES,
    WEIGHT_TYPES,
    PackSettings,
    check_capacity,
    check_cost_tags,
    check_region,
    check_stack_config,
    check_weighted_record_sets,
    check_weights,
    load_settings,
    settings_from_config,
)

__all__ = [
    "CAPACITY_TYPES",
    "COST_TAGGED_TYPES",
    "WEIGHT_TYPES",
    "PackSettings",
    "check_capacity",
    "check_cost_tags",
    "check_region",
    "check_stack_config",
    "check_weighted_record_sets",
    "check_weights",
    "load_settings",
    "settings_from_config",
]
