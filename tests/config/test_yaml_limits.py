"""Alias bombs and deep nesting in any YAML the driver reads: a positioned error, fast and small.

Before the limits, aliases were expanded before validation (a 3.5 KB stack file with nested
aliases under ``mirrorcast:tags`` took 927 MB and 90 s) and deep nesting ended in a
``RecursionError`` traceback. Every YAML input goes through ``check_yaml_limits``: stack files,
rules files and event files.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from ruamel.yaml.error import MarkedYAMLError

from forecasting.events import EventFeedError, EventSchedule
from infra.config import (
    MAX_ALIAS_NODES,
    MAX_YAML_DEPTH,
    ConfigError,
    load_stack_file,
)
from infra.config._yaml_limits import check_yaml_limits
from policies import load_rules_files

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "stacks" / "Pulumi.demo.yaml").read_text()
BOMB_LEVELS = 8
"""Eight levels of ten aliases each: 10^8 nodes once expanded."""


def _bomb(indent: str, *, levels: int = BOMB_LEVELS) -> tuple[str, int]:
    """Lines of a billion-laughs mapping at ``indent``, and the line (1-based, within) that trips.

    ``l0`` is 11 nodes, ``lk`` is 1 + 10 aliases of ``l(k-1)``; aliases up to ``l3`` add 12,330
    nodes, and the ninth alias in ``l4`` (11,111 nodes each) crosses 100,000: line 5.
    """
    lines = [f"{indent}l0: &l0 [{', '.join(['lol'] * 10)}]"]
    for level in range(1, levels):
        lines.append(f"{indent}l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    assert MAX_ALIAS_NODES == 100_000, "recompute the line that trips"
    return "\n".join(lines) + "\n", 5


def _bounded(load: object) -> tuple[Exception, float, int]:
    """Run ``load``; (the exception it raised, seconds, peak traced allocation in bytes)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        load()  # type: ignore[operator]
    except Exception as exc:
        seconds = time.monotonic() - started
        _now, peak = tracemalloc.get_traced_memory()
        return exc, seconds, peak
    finally:
        tracemalloc.stop()
    raise AssertionError("the input was accepted")


class TestStackFiles:
    def test_an_alias_bomb_under_tags_is_refused_at_its_line_quickly_and_in_little_memory(
        self, tmp_path: Path
    ) -> None:
        bomb, trips = _bomb("    ")
        head = "config:\n  aws:region: us-east-1\n  mirrorcast:tags:\n"
        stack = tmp_path / "Pulumi.bomb.yaml"
        stack.write_text(head + bomb)

        error, seconds, peak = _bounded(lambda: load_stack_file(stack))

        assert isinstance(error, ConfigError), repr(error)
        assert f"{stack}:{3 + trips}:" in str(error), str(error)
        assert f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes" in str(error)
        assert seconds < 2 and peak < 50_000_000, (seconds, peak)

    @pytest.mark.parametrize(
        "nest",
        [
            pytest.param(lambda n: "[" * n + "]" * n, id="flow-sequences"),
            pytest.param(lambda n: "{a: " * n + "1" + "}" * n, id="flow-mappings"),
            pytest.param(lambda n: "\n    " + "- " * n + "1", id="block-sequences"),
        ],
    )
    def test_deep_nesting_is_a_positioned_error_not_a_recursion_error(
        self, tmp_path: Path, nest: object
    ) -> None:
        stack = tmp_path / "Pulumi.deep.yaml"
        text = nest(5000)  # type: ignore[operator]
        stack.write_text(f"config:\n  mirrorcast:tags: {text}\n")

        error, seconds, _peak = _bounded(lambda: load_stack_file(stack))

        assert isinstance(error, ConfigError), repr(error)
        assert f"{stack}:{2 if '[' in text or '{' in text else 3}:" in str(
            error
        ) and f"nested more than {MAX_YAML_DEPTH} levels" in str(error)
        assert seconds < 2

    def test_ordinary_anchors_and_merge_keys_still_load(self, tmp_path: Path) -> None:
        # The demo with its primary network anchored and merged into the mirror's.
        text = DEMO.replace(
            "        network:\n          vpc_id: vpc-0123",
            "        network: &net\n          vpc_id: vpc-0123",
            1,
        )
        text = text.replace(
            "        network:\n          vpc_id: vpc-0fed",
            "        network:\n          <<: *net\n          vpc_id: vpc-0fed",
            1,
        )
        assert "<<: *net" in text
        stack = tmp_path / "Pulumi.anchors.yaml"
        stack.write_text(text)

        config = load_stack_file(stack)

        assert config.pools["web"].mirror.network is not None
        assert config.pools["web"].mirror.network.vpc_id == "vpc-0fedcba9876543210"


def test_an_alias_bomb_in_a_rules_file_names_the_rules_file_and_line(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.test.yaml"
    stack.write_text(
        DEMO.replace("      rules:\n", "      rules_file: rules/web.yaml\n      rules:\n", 1)
    )
    (tmp_path / "rules").mkdir()
    bomb, trips = _bomb("")
    (tmp_path / "rules" / "web.yaml").write_text(bomb)

    error, seconds, peak = _bounded(
        lambda: load_rules_files(load_stack_file(stack), stack_file=stack)
    )

    assert isinstance(error, ConfigError), repr(error)
    assert f"web.yaml:{trips}:" in str(error) and "aliases expand" in str(error), str(error)
    assert seconds < 2 and peak < 50_000_000


def test_an_alias_bomb_in_an_event_file_names_the_file_and_line(tmp_path: Path) -> None:
    bomb, trips = _bomb("  ")
    events = tmp_path / "events.yaml"
    events.write_text("bomb:\n" + bomb)

    error, seconds, peak = _bounded(lambda: EventSchedule.from_file(events))

    assert isinstance(error, EventFeedError), repr(error)
    assert f"events.yaml:{1 + trips}:" in str(error) and "aliases expand" in str(error), str(error)
    assert seconds < 2 and peak < 50_000_000


class TestTheCheckIsCheapForAnOrdinaryFile:
    """A fleet's driver parses every stack file at start: the limits walk must not cost a second
    pure-Python parse of each (ruamel's, 0.9 s of CPU for a 100-pool file)."""

    def test_a_file_within_the_limits_is_walked_by_libyaml_not_by_ruamel(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        yaml = pytest.importorskip("yaml")
        if not yaml.__with_libyaml__:
            pytest.skip("PyYAML here has no libyaml: the ruamel walk is the only one")
        from ruamel.yaml import YAML

        def refused(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("ruamel parsed the file a second time")

        monkeypatch.setattr(YAML, "parse", refused)
        text = "config:\n  mirrorcast:tags: &t {a: 1}\n  other: *t\n" + "".join(
            f"  k{i}: [{i}, {{x: y}}]\n" for i in range(200)
        )
        check_yaml_limits(text)  # no error, and ruamel's parse not called

    @pytest.mark.parametrize(
        "text",
        [
            # 20,000 aliases of an 11-node list: 220,000 nodes once expanded.
            "a: &a [x, x, x, x, x, x, x, x, x, x]\nc: [" + ", ".join(["*a"] * 20_000) + "]\n",
            "a:\n" + "".join("  " * d + "- \n" for d in range(1, 80)),
            "a: [unclosed\n",
        ],
        ids=["alias bomb", "deep block nesting", "syntax error"],
    )
    def test_a_file_libyaml_refuses_gets_ruamels_error_and_position(self, text: str) -> None:
        with pytest.raises(MarkedYAMLError) as caught:
            check_yaml_limits(text, max_alias_nodes=100_000, max_depth=64)
        assert caught.value.problem_mark is not None
        assert type(caught.value.problem_mark).__module__.startswith("ruamel")
