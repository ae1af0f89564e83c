"""mirrorcast's CrossGuard policy pack: ``pulumi preview --policy-pack policies/crossguard``.

Pulumi runs this file in the pack's own virtualenv (``requirements.txt``), which holds only
pulumi-policy, pydantic and ruamel.yaml. The checks live in this checkout
(``policies/crossguard/checks.py``, weight ranges from ``infra.config``); the packages
``policies`` and ``policies.crossguard`` are registered by path *without running their
``__init__``*, because those import the planner and its dependencies (pandas, lark, the
forecasting engine) that the pack neither needs nor installs.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

_PACK = Path(__file__).resolve().parent
_ROOT = _PACK.parents[1]
sys.path.insert(0, str(_ROOT))
for _name, _path in (("policies", _ROOT / "policies"), ("policies.crossguard", _PACK)):
    if _name not in sys.modules:
        _module = types.ModuleType(_name)
        _module.__path__ = [str(_path)]
        sys.modules[_name] = _module

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.crossguard._policies import build_policies  # noqa: E402

PolicyPack(
    name="mirrorcast-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)
