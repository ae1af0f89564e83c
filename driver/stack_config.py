"""The stack config the driver decides on: the stack file plus each pool's ``rules_file``.

Every command that forecasts or plans loads the config through here, so a rule kept in a rules
file is evaluated exactly like an inline one, and a broken rules file stops the command with the
file, line and key (exit 2) instead of being ignored.
"""

from __future__ import annotations

from pathlib import Path

from infra.config import (
    MirrorcastConfig,
    config_from_text,
    load_stack,
    rule_warnings,
    stack_file_path,
)

__all__ = ["config_warnings", "load_driver_config", "load_driver_config_text"]


def load_driver_config(stack: str, root: Path) -> MirrorcastConfig:
    """``stacks/Pulumi.<stack>.yaml`` under ``root``, validated, with its rules files merged in."""
    return _with_rules(load_stack(stack, root), stack_file=stack_file_path(stack, root))


def load_driver_config_text(text: str, *, source: str, stack: str, root: Path) -> MirrorcastConfig:
    """A stack file's text (gitops: the base branch's copy) with its rules files merged in.

    ``rules_file`` paths are relative to the stack file, so they are read from the checkout's
    ``stacks/`` directory.
    """
    return _with_rules(
        config_from_text(text, source=source), stack_file=stack_file_path(stack, root)
    )


def _with_rules(config: MirrorcastConfig, *, stack_file: Path) -> MirrorcastConfig:
    if all(pool.rules_file is None for pool in config.pools.values()):
        return config  # nothing to merge: the rule grammar is not imported
    from policies import load_rules_files

    return load_rules_files(config, stack_file=stack_file)


def config_warnings(config: MirrorcastConfig) -> list[str]:
    """Valid config that cannot do what it says (e.g. a rule that can never fire), one line each."""
    return rule_warnings(config)
