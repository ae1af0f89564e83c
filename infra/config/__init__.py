"""The stack-config contract shared by the Pulumi program, the planner, the driver and the tests.

Import from here, not from the private modules::

    from infra.config import MirrorcastConfig, load_stack
"""

from infra.config._durations import Duration, format_duration, parse_duration
from infra.config._errors import (
    ConfigError,
    ConfigIssue,
    MirrorcastError,
    UnknownCloudError,
    UserError,
)
from infra.config._loader import (
    MAX_STACK_FILE_BYTES,
    NAMESPACE,
    config_from_mapping,
    config_from_text,
    find_project_root,
    load_stack,
    load_stack_file,
    stack_file_path,
)
from infra.config._model import *  # noqa: F403  (the model's own __all__ is the public surface)
from infra.config._model import __all__ as _model_all
from infra.config._rule_checks import rule_problems, rule_warnings
from infra.config._secrets import (
    NAMES_SECRET_ENV,
    REDACTED,
    WELL_KNOWN_SECRET_ENV,
    config_secret_env_names,
    redact,
    redact_text,
    register_config_secrets,
    register_secret_env,
    register_secret_value,
)
from infra.config._yaml_limits import (
    MAX_ALIAS_NODES,
    MAX_YAML_DEPTH,
    YamlLimitError,
    check_yaml_limits,
)
from infra.config.paths import ConfigPathError, set_path

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_STACK_FILE_BYTES",
    "MAX_YAML_DEPTH",
    "YamlLimitError",
    "check_yaml_limits",
    "NAMESPACE",
    "NAMES_SECRET_ENV",
    "REDACTED",
    "WELL_KNOWN_SECRET_ENV",
    "config_secret_env_names",
    "redact",
    "redact_text",
    "register_config_secrets",
    "register_secret_env",
    "register_secret_value",
    "ConfigError",
    "ConfigIssue",
    "UnknownCloudError",
    "ConfigPathError",
    "Duration",
    "MirrorcastError",
    "UserError",
    "config_from_mapping",
    "config_from_text",
    "find_project_root",
    "format_duration",
    "load_stack",
    "load_stack_file",
    "parse_duration",
    "rule_problems",
    "set_path",
    "rule_warnings",
    "stack_file_path",
    *_model_all,
]
