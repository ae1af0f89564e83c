"""Fuzzed user inputs fail with a clear error naming the input and the position, never a traceback.

Covers what ``tests/config/test_config_fuzz.py`` and ``tests/policies/test_rule_language.py``
do not: structured mutations of whole stack files (YAML trees of random shape under real keys),
rules files, event feeds (CSV and YAML) and metric files (CSV and Parquet), plus the size limit
of each. Every input is read with a deadline, so a hang fails the test instead of the suite.
"""

from __future__ import annotations

import io
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from forecasting.events import MAX_EVENT_FILE_BYTES, EventFeedError, EventSchedule
from forecasting.sources import MAX_METRICS_FILE_BYTES, FileMetricSource, SourceError
from infra.config import (
    MAX_STACK_FILE_BYTES,
    ConfigError,
    FileSource,
    MetricSpec,
    MirrorcastConfig,
    config_from_text,
    load_stack_file,
)
from policies import MAX_RULES_FILE_BYTES, load_rules_files

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "stacks" / "Pulumi.demo.yaml").read_text()
FUZZ = settings(
    max_examples=60,
    deadline=2000,  # milliseconds per input: a slow or hanging parser fails the test
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
T0 = datetime(2020, 1, 1, tzinfo=UTC)
T1 = datetime(2030, 1, 1, tzinfo=UTC)

# ----------------------------------------------------------------------------- helpers

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["5m", "-1h", "1e309", "NaN", "active", "paused", "100%", "2026-13-40"]),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def _no_traceback(text: str) -> None:
    assert text.strip(), "an error must say something"
    assert "Traceback" not in text
    assert "object at 0x" not in text, text


def _demo_document() -> dict[str, object]:
    loaded = YAML(typ="safe").load(DEMO)
    assert isinstance(loaded, dict)
    return loaded


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, (*prefix, index)))
    return out


DEMO_PATHS = _paths(_demo_document()["config"])


def _dump(document: object) -> str:
    out = io.StringIO()
    YAML(typ="safe").dump(document, out)
    return out.getvalue()


# ----------------------------------------------------------------------------- stack files


@FUZZ
@given(where=st.sampled_from(DEMO_PATHS), value=trees)
@example(where=("mirrorcast:tags",), value={":0": None})
def test_any_value_at_any_key_of_a_stack_gives_a_config_or_an_error_naming_the_key(
    where: tuple[object, ...], value: object
) -> None:
    document = _demo_document()
    node: object = document["config"]
    for key in where[:-1]:
        node = node[key]  # type: ignore[index]
    node[where[-1]] = value  # type: ignore[index]
    text = _dump(document)
    try:
        YAML(typ="safe").load(text)
        readable = True
    except YAMLError:
        # ruamel's own dumper can write text it cannot read back (a key ':0' in flow style
        # becomes '{:0: null}'): not a stack file, but it must still get a positioned error.
        readable = False
    try:
        assert isinstance(config_from_text(text, source="fuzz.yaml"), MirrorcastConfig)
    except ConfigError as error:
        rendered = str(error)
        _no_traceback(rendered)
        # Every issue names the file; an issue inside a mirrorcast key names a key path and line.
        assert all(line.startswith("fuzz.yaml") for line in rendered.splitlines())
        first_key = str(where[0])
        if not readable:
            assert re.match(r"fuzz\.yaml:\d+:\d+: invalid YAML", rendered), rendered
        elif first_key.startswith("mirrorcast:"):
            located = [i for i in error.issues if i.path]
            assert located, rendered
            assert any(i.line is not None for i in located), rendered


def test_an_oversized_stack_file_is_refused_with_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.big.yaml"
    path.write_text(DEMO)
    os.truncate(path, MAX_STACK_FILE_BYTES + 1)  # sparse: the size is what is checked first

    with pytest.raises(ConfigError) as caught:
        load_stack_file(path)

    assert str(path) in str(caught.value)
    assert f"{MAX_STACK_FILE_BYTES}" in str(caught.value)


# ----------------------------------------------------------------------------- rules files


def _stack_with_rules_file(tmp_path: Path, rules: str) -> Path:
    text = DEMO.replace("      rules:\n", "      rules_file: rules.yaml\n      rules:\n", 1)
    stack = tmp_path / "Pulumi.demo.yaml"
    stack.write_text(text)
    (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
    return stack


@FUZZ
@given(
    rules=st.one_of(
        st.text(max_size=300),
        trees.map(_dump),
        st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["a", "b-1", "bad name", "", "predicted-cpu"]),
                    "when": st.sampled_from(
                        [
                            "current(cpu) > 90% for 5m",
                            "predicted(cpu, p90) > 80% within 30m",
                            "predicted(cpu, p42) > 1",
                            "current(nope) > 1",
                            "current(cpu) > 90 ms",
                            "((((",
                            "",
                        ]
                    ),
                    "actions": st.one_of(trees, st.just([{"type": "activate_mirror"}])),
                },
                optional={"weight": scalars, "oops": scalars},
            ),
            max_size=3,
        ).map(_dump),
    )
)
def test_a_fuzzed_rules_file_gives_rules_or_an_error_naming_file_line_and_key(
    tmp_path_factory: pytest.TempPathFactory, rules: str
) -> None:
    tmp_path = tmp_path_factory.mktemp("rules")
    stack = _stack_with_rules_file(tmp_path, rules)
    config = load_stack_file(stack)
    try:
        load_rules_files(config, stack_file=stack)
    except ConfigError as error:
        rendered = str(error)
        _no_traceback(rendered)
        assert "rules.yaml" in rendered
        for issue in error.issues:
            if issue.path and re.match(r"^\d+\.", issue.path):
                assert issue.line is not None, rendered


def test_an_oversized_rules_file_is_refused_with_the_limit(tmp_path: Path) -> None:
    stack = _stack_with_rules_file(tmp_path, "[]\n")
    os.truncate(tmp_path / "rules.yaml", MAX_RULES_FILE_BYTES + 1)

    with pytest.raises(ConfigError) as caught:
        load_rules_files(load_stack_file(stack), stack_file=stack)

    assert "rules.yaml" in str(caught.value)
    assert f"{MAX_RULES_FILE_BYTES}" in str(caught.value)


# ----------------------------------------------------------------------------- event feeds

_cells = st.one_of(
    st.text(max_size=25),
    st.sampled_from(
        [
            "2026-11-27",
            "2026-11-27T09:00:00Z",
            "2026-11-27T09:00:00+05:30",
            "2026-02-30",
            "yesterday",
            "1.5",
            "-2",
            "0",
            "nan",
            "inf",
            "campaign",
            "Bad Kind",
            "",
        ]
    ),
)


def _check_event_error(error: EventFeedError, path: Path) -> None:
    rendered = str(error)
    _no_traceback(rendered)
    assert rendered.startswith(str(path)), rendered
    assert error.field
    if error.field not in ("file", "yaml"):
        assert error.line is not None and error.line >= 1, rendered


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["name", "kind", "start", "end", "uplift", "extra", ""]),
        min_size=0,
        max_size=6,
    ),
    rows=st.lists(st.lists(_cells, max_size=7), max_size=6),
)
def test_a_fuzzed_event_csv_gives_events_or_an_error_naming_file_line_and_field(
    tmp_path_factory: pytest.TempPathFactory, header: list[str], rows: list[list[str]]
) -> None:
    path = tmp_path_factory.mktemp("events") / "events.csv"
    text = ",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    try:
        EventSchedule.from_file(path)
    except EventFeedError as error:
        _check_event_error(error, path)


@FUZZ
@given(
    document=st.one_of(
        trees,
        st.lists(
            st.dictionaries(
                st.sampled_from(["name", "kind", "start", "end", "uplift", "other"]),
                st.one_of(_cells, scalars),
                max_size=6,
            ),
            max_size=4,
        ),
    ),
    raw=st.text(max_size=200),
    use_raw=st.booleans(),
)
def test_a_fuzzed_event_yaml_gives_events_or_an_error_naming_file_line_and_field(
    tmp_path_factory: pytest.TempPathFactory, document: object, raw: str, use_raw: bool
) -> None:
    path = tmp_path_factory.mktemp("events") / "events.yaml"
    path.write_text(raw if use_raw else _dump(document), encoding="utf-8")
    try:
        EventSchedule.from_file(path)
    except EventFeedError as error:
        _check_event_error(error, path)


def test_event_files_that_are_not_utf8_or_too_large_are_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    binary = tmp_path / "events.csv"
    binary.write_bytes(b"name,start,end\n\xff\xfe,2026-01-01,2026-01-02\n")
    with pytest.raises(EventFeedError, match="not UTF-8"):
        EventSchedule.from_file(binary)

    big = tmp_path / "big.yaml"
    big.write_text("[]\n")
    os.truncate(big, MAX_EVENT_FILE_BYTES + 1)
    with pytest.raises(EventFeedError) as caught:
        EventSchedule.from_file(big)
    assert f"{MAX_EVENT_FILE_BYTES:,}" in str(caught.value) and str(big) in str(caught.value)


# ----------------------------------------------------------------------------- metric files

_metric_cells = st.one_of(
    _cells,
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["1700000000", "1e20", "-1e20", "web", "cpu", '"quoted,comma"', '"']),
)


def _fetch(path: Path) -> pd.Series:
    source = FileMetricSource(FileSource(path=str(path)), root=path.parent)
    return source.fetch(pool="web", metric="cpu", spec=MetricSpec(), start=T0, end=T1)


def _check_source_error(error: SourceError, path: Path) -> None:
    rendered = str(error)
    _no_traceback(rendered)
    assert str(path.name) in rendered, rendered
    # A complaint about a cell names its line (CSV) or row (Parquet) and its column.
    if "cannot parse" in rendered or "is not a number" in rendered:
        assert re.search(r"(line|row) \d+: column ", rendered), rendered


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["timestamp", "pool", "metric", "value", "cpu", "web.cpu", "x", ""]),
        min_size=0,
        max_size=5,
    ),
    rows=st.lists(st.lists(_metric_cells, max_size=6), max_size=8),
)
def test_a_fuzzed_metrics_csv_gives_a_series_or_an_error_naming_file_line_and_column(
    tmp_path_factory: pytest.TempPathFactory, header: list[str], rows: list[list[str]]
) -> None:
    path = tmp_path_factory.mktemp("metrics") / "metrics.csv"
    path.write_text(
        ",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8"
    )
    try:
        series = _fetch(path)
    except SourceError as error:
        _check_source_error(error, path)
    else:
        assert series.name == "cpu" and series.dtype == float
        assert str(pd.DatetimeIndex(series.index).tz) == "UTC"


@FUZZ
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=5)),
        min_size=1,
        max_size=8,
    ),
    times=st.lists(
        st.one_of(
            st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()),
            st.text(max_size=8),
            st.none(),
        ),
        min_size=1,
        max_size=8,
    ),
    damage=st.one_of(st.none(), st.integers(min_value=0, max_value=4000)),
)
def test_a_fuzzed_metrics_parquet_gives_a_series_or_an_error_naming_file_and_row(
    tmp_path_factory: pytest.TempPathFactory,
    values: list[object],
    times: list[object],
    damage: int | None,
) -> None:
    path = tmp_path_factory.mktemp("metrics") / "metrics.parquet"
    n = min(len(values), len(times))
    frame = pd.DataFrame(
        {
            "timestamp": pd.Series(times[:n], dtype=object),
            "cpu": pd.Series(values[:n], dtype=object).astype(str),
        }
    )
    frame.to_parquet(path)
    if damage is not None:
        data = bytearray(path.read_bytes())
        data[damage % len(data)] ^= 0xFF
        path.write_bytes(bytes(data))
    try:
        _fetch(path)
    except SourceError as error:
        _check_source_error(error, path)


def test_an_oversized_metrics_file_is_refused_with_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("timestamp,cpu\n2026-01-01T00:00:00Z,1\n")
    os.truncate(path, MAX_METRICS_FILE_BYTES + 1)

    with pytest.raises(SourceError) as caught:
        _fetch(path)

    assert "metrics.csv" in str(caught.value)
    assert f"{MAX_METRICS_FILE_BYTES:,}" in str(caught.value)
