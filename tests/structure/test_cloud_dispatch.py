"""infra/pool.py declares each side and the database per cloud with no implicit last branch:
a cloud without its branch fails loudly instead of being declared as GCP (the old ``else``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from infra.config import MirrorcastError, load_stack_file
from infra.pool import Pool

STACKS = Path(__file__).resolve().parents[2] / "stacks"
# A cloud the config would know but infra/pool.py does not (a stand-in for a forgotten branch).
TOY_CLOUD = SimpleNamespace(value="toycloud")


def _pool_with_database():  # type: ignore[no-untyped-def]
    for path in sorted(STACKS.glob("Pulumi.*.yaml")):
        for name, spec in load_stack_file(path).pools.items():
            if spec.sync.database is not None:
                return name, spec
    pytest.skip("no example stack declares a database")


def test_a_side_on_a_cloud_without_its_branch_is_refused_not_declared_as_gcp() -> None:
    name, spec = _pool_with_database()
    pool = SimpleNamespace(_name=name, _spec=spec, _tags={})
    plan = SimpleNamespace(cloud=TOY_CLOUD, role="mirror", region="toy-1")
    with pytest.raises(MirrorcastError, match=r"the mirror is on cloud 'toycloud'"):
        Pool._side(pool, plan)  # type: ignore[arg-type]


def test_a_database_on_a_cloud_without_its_branch_is_refused() -> None:
    name, spec = _pool_with_database()
    primary = spec.primary.model_copy(update={"cloud": TOY_CLOUD})
    pool = SimpleNamespace(_name=name, _spec=spec.model_copy(update={"primary": primary}), _tags={})
    with pytest.raises(MirrorcastError, match=r"the database is on cloud 'toycloud'"):
        Pool._database(pool)  # type: ignore[arg-type]
