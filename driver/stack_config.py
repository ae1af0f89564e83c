"""The stack config the driver decides on: the stack file plus each pool's ``rules_file``.

Every command that forecasts or plans loads the config through here, so a rule kept in a rules
file is evaluated exactly like an inline one, and a broken rules file stops the command with the
file, line and key (exit 2) instead of being ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.config import (
    NAMESPACE,
    ConfigError,
    ConfigIssue,
    MirrorcastConfig,
    config_from_mapping,
    config_from_text,
    load_stack,
    rule_warnings,
    stack_file_path,
)

__all__ = ["config_warnings", "load_driver_config", "load_driver_config_text"]


def load_driver_config(stack: str, root: Path) -> MirrorcastConfig:
    """``stacks/Pulumi.<stack>.yaml`` under ``root``, validated, with its rules files merged in."""
    path = stack_file_path(stack, root)
    try:
        config = load_stack(stack, root)
    except ConfigError as error:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise error from None
        raise _every_problem(error, text=text, stack=stack) from None
    return _with_rules(config, stack_file=path)


def load_driver_config_text(text: str, *, source: str, stack: str, root: Path) -> MirrorcastConfig:
    """A stack file's text (gitops: the base branch's copy) with its rules files merged in.

    ``rules_file`` paths are relative to the stack file, so they are read from the checkout's
    ``stacks/`` directory.
    """
    try:
        config = config_from_text(text, source=source)
    except ConfigError as error:
        raise _every_problem(error, text=text, stack=stack) from None
    return _with_rules(config, stack_file=stack_file_path(stack, root))


def _with_rules(config: MirrorcastConfig, *, stack_file: Path) -> MirrorcastConfig:
    if all(pool.rules_file is None for pool in config.pools.values()):
        return config  # nothing to merge: the rule grammar is not imported
    from policies import load_rules_files

    return load_rules_files(config, stack_file=stack_file)


def config_warnings(config: MirrorcastConfig) -> list[str]:
    """Valid config that cannot do what it says (e.g. a rule that can never fire), one line each."""
    return rule_warnings(config)


def _every_problem(error: ConfigError, *, text: str, stack: str) -> ConfigError:
    """``error`` plus the problems its missing keys hid, so a new stack is fixed in one round.

    pydantic runs a pool's cross-field checks (network for the cloud, balancer kind for the
    placement, images for the mirror's location) only once every required key is there, so a
    half-written stack used to reveal its problems in rounds. Here each missing key of a pool is
    filled with the placeholder ``mirrorcast init`` writes for the same placement, the stack is
    validated again, and the further problems (about keys the person did write) are added. The
    placeholders are never used for anything else.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    missing = [
        i for i in error.issues if i.message == "is required" and i.path.startswith("pools.")
    ]
    if not missing:
        return error
    try:
        document = YAML(typ="safe").load(text)
        pools = document["config"][f"{NAMESPACE}:pools"]
    except (OSError, YAMLError, KeyError, TypeError):
        return error
    if not isinstance(pools, dict):
        return error
    filled: list[str] = []
    for issue in missing:
        name, *keys = issue.path.split(".")[1:]
        pool = pools.get(name)
        if not isinstance(pool, dict) or not keys:
            continue
        template = _template_pool(pool, name=name, stack=stack)
        value = _at(template, keys)
        parent = _at(pool, keys[:-1]) if len(keys) > 1 else pool
        if value is None or not isinstance(parent, dict):
            continue
        parent[keys[-1]] = value
        filled.append(issue.path)
    if not filled:
        return error
    try:
        config_from_mapping(document["config"], source=error.source)
    except ConfigError as again:
        known = {(i.path, i.message) for i in error.issues}
        hidden = [
            i
            for i in again.issues
            if (i.path, i.message) not in known
            and not any(i.path == f or i.path.startswith(f + ".") for f in filled)
        ]
        if hidden:
            lines = _key_lines(text)
            hidden = [
                ConfigIssue(i.path, i.message, *lines.get(i.path, (None, None))) for i in hidden
            ]
            return ConfigError([*error.issues, *hidden], source=error.source)
    return error


def _template_pool(pool: dict[str, Any], *, name: str, stack: str) -> dict[str, Any]:
    """The pool ``mirrorcast init`` would write for ``pool``'s placement (its placeholders)."""
    from ruamel.yaml import YAML

    from driver.stack_template import CLOUDS, StackAnswers, default_balancer, stack_text

    def section(node: Any, key: str) -> dict[str, Any]:
        value = node.get(key) if isinstance(node, dict) else None
        return value if isinstance(value, dict) else {}

    primary = section(pool, "primary")
    location = section(section(pool, "mirror"), "location")
    cloud = str(primary.get("cloud") or "aws")
    cloud = cloud if cloud in CLOUDS else "aws"
    region = str(primary.get("region") or "us-east-1")
    mirror_cloud = str(location.get("cloud") or cloud)
    mirror_cloud = mirror_cloud if mirror_cloud in CLOUDS else cloud
    mirror_region = str(location.get("region") or region)
    same = mirror_cloud == cloud and mirror_region == region
    kind = default_balancer(cloud=cloud, mirror_cloud=mirror_cloud, same_region=same)
    written = stack_text(
        StackAnswers(
            stack=stack,
            pool=name,
            cloud=cloud,
            region=region,
            mirror_cloud=mirror_cloud,
            mirror_region=mirror_region,
            balancer=kind,
            metrics="prometheus",
        )
    )
    parsed = YAML(typ="safe").load(written)
    template: dict[str, Any] = parsed["config"][f"{NAMESPACE}:pools"][name]
    return template


def _at(node: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _key_lines(text: str) -> dict[str, tuple[int, int]]:
    """Dotted key path below ``mirrorcast:`` -> (line, column) of the key, 1-based."""
    from ruamel.yaml import YAML

    out: dict[str, tuple[int, int]] = {}
    try:
        document = YAML(typ="rt").load(text)
        config = document["config"]
    except Exception:  # positions are a courtesy; the issues stand without them
        return out

    def walk(node: Any, prefix: str) -> None:
        lc = getattr(node, "lc", None)
        if lc is None or not isinstance(node, dict):
            return
        for key in node:
            line, column = lc.key(key)
            dotted = f"{prefix}.{key}" if prefix else str(key)
            out[dotted] = (line + 1, column + 1)
            walk(node[key], dotted)

    for key in config:
        if str(key).startswith(f"{NAMESPACE}:"):
            name = str(key)[len(NAMESPACE) + 1 :]
            line, column = config.lc.key(key)
            out[name] = (line + 1, column + 1)
            walk(config[key], name)
    return out
