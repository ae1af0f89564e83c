"""Event feeds: schedules from CSV/YAML, seasonal calendars, and what the engine and rules read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.events import MAX_EVENT_FILE_BYTES, Event, EventFeedError, EventSchedule
from infra.config import EventsSpec, load_stack

ROOT = Path(__file__).resolve().parents[2]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------- reading files


def test_csv_schedule_is_read_with_defaults_and_time_zones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        (
            "name,kind,start,end,uplift\n"
            "spring-sale,,2026-03-01T09:00:00+01:00,2026-03-02T09:00:00+01:00,1.5\n"
            "\n"
            "v3.0,release,2026-03-01 12:00,2026-03-01 13:00,\n"
        ),
    )
    sale, release = EventSchedule.from_file(path).events
    assert sale == Event(
        name="spring-sale",
        kind="campaign",
        start=utc(2026, 3, 1, 8),
        end=utc(2026, 3, 2, 8),
        uplift=1.5,
    )
    assert release == Event(
        name="v3.0", kind="release", start=utc(2026, 3, 1, 12), end=utc(2026, 3, 1, 13)
    )


def test_yaml_schedule_as_a_list_with_unquoted_times(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.yaml",
        "- name: launch\n  start: 2026-05-01T10:00:00Z\n  end: 2026-05-01T14:00:00+02:00\n  uplift: 2\n",
    )
    (event,) = EventSchedule.from_file(path).events
    assert event == Event(
        name="launch", start=utc(2026, 5, 1, 10), end=utc(2026, 5, 1, 12), uplift=2.0
    )
    assert type(event.start) is datetime, "no YAML-library datetime subclasses leak out"


def test_a_bare_end_date_includes_that_whole_day(tmp_path: Path) -> None:
    path = write(
        tmp_path, "b.yml", "events:\n  - name: sale\n    start: 2026-11-27\n    end: 2026-11-30\n"
    )
    (event,) = EventSchedule.from_file(path).events
    assert (event.start, event.end) == (utc(2026, 11, 27), utc(2026, 12, 1))


def test_the_demo_events_file_is_valid() -> None:
    schedule = EventSchedule.from_file(ROOT / "examples/demo/events.yaml")
    assert {"campaign", "release"} <= set(schedule.kinds)
    campaign = next(e for e in schedule if e.kind == "campaign")
    assert campaign.uplift is not None and campaign.uplift > 1


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "e.csv",
            "name,start,end\nsale,2026-01-01,tomorrow\n",
            r"e.csv:2: end: 'tomorrow' is not an ISO 8601 date or time",
        ),
        (
            "e.csv",
            "name,start,end,uplift\nsale,2026-01-01,2026-01-02,\nx,2026-01-01,2026-01-02,-1\n",
            r"e.csv:3: uplift: must be a positive factor such as 1.5, got -1",
        ),
        (
            "e.csv",
            "name,start,end,uplift\nsale,2026-01-01,2026-01-02,lots\n",
            r"e.csv:2: uplift: 'lots' is not a number",
        ),
        (
            "e.csv",
            "name,start\nsale,2026-01-01\n",
            r"e.csv:1: end: missing column; the header has name, start",
        ),
        ("e.csv", "name,start,end,owner\n", r"e.csv:1: owner: unknown column"),
        (
            "e.csv",
            "name,start,end\n,2026-01-01,2026-01-02\n",
            r"e.csv:2: name: missing; every event needs a name",
        ),
        (
            "e.csv",
            "name,start,end\na,2026-01-01,2026-01-02,x\n",
            r"e.csv:2: row: has more values than the 3 columns",
        ),
        (
            "e.csv",
            "name,kind,start,end\na,Big Sale,2026-01-01,2026-01-02\n",
            r"e.csv:2: kind: 'Big Sale' must be lower case",
        ),
        (
            "e.yaml",
            "events:\n  - name: a\n    start: 2026-01-02T00:00:00Z\n    end: 2026-01-01T00:00:00Z\n",
            r"e.yaml:4: end: .* is not after start",
        ),
        (
            "e.yaml",
            "- name: a\n  start: 2026-01-01\n  end: 2026-01-02\n- name: b\n  start: 2026-01-01\n  finish: 2026-01-02\n",
            r"e.yaml:6: finish: unknown field; expected name, kind, start, end, uplift",
        ),
        (
            "e.yaml",
            "- name: a\n  start: 2026-01-01\n- just a string\n",
            r"e.yaml:1: end: missing; give an ISO 8601 date or time",
        ),
        ("e.yaml", "- name: a\n  start: [2026\n", r"e.yaml:\d+: yaml: not valid YAML"),
        (
            "e.yaml",
            "calendar: holidays\n",
            r"e.yaml:1: events: a mapping must hold exactly one key, events",
        ),
        ("e.json", "[]", r"e.json: file: unknown event file type '.json'"),
    ],
)
def test_bad_event_files_name_file_line_and_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(EventFeedError, match=message):
        EventSchedule.from_file(write(tmp_path, name, text))


def test_event_feed_errors_are_value_errors_with_parts(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        EventSchedule.from_file(write(tmp_path, "e.csv", "name,start,end\nsale,2026-01-01,never\n"))
    error = caught.value
    assert isinstance(error, EventFeedError)
    assert (error.line, error.field) == (2, "end")
    assert str(error).startswith(f"{tmp_path / 'e.csv'}:2: end: ")


def test_oversized_event_files_are_refused_with_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("name,start,end\n" + "x" * MAX_EVENT_FILE_BYTES)
    with pytest.raises(EventFeedError, match=f"limited to {MAX_EVENT_FILE_BYTES:,} bytes"):
        EventSchedule.from_file(path)


def test_missing_event_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EventFeedError, match=r"nope.yaml: file: cannot read the event file"):
        EventSchedule.from_file(tmp_path / "nope.yaml")


def test_events_refuse_naive_times_and_empty_windows() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        Event(name="a", start=datetime(2026, 1, 1), end=utc(2026, 1, 2))
    with pytest.raises(ValueError, match="must be after start"):
        Event(name="a", start=utc(2026, 1, 2), end=utc(2026, 1, 2))


# ----------------------------------------------------------------- calendars

NOV = {"start": utc(2026, 11, 1), "end": utc(2027, 1, 1)}


def test_holiday_calendar_gives_named_holiday_days() -> None:
    schedule = EventSchedule.from_calendars(["holidays:US"], **NOV)
    thanksgiving = next(e for e in schedule if e.name == "thanksgiving_day")
    assert (thanksgiving.kind, thanksgiving.start, thanksgiving.end) == (
        "holiday",
        utc(2026, 11, 26),
        utc(2026, 11, 27),
    )
    assert "christmas_day" in {e.name for e in schedule}
    assert all(NOV["start"] <= e.start < NOV["end"] for e in schedule)


def test_holiday_calendar_with_subdivision() -> None:
    names = {
        e.name
        for e in EventSchedule.from_calendars(
            ["holidays:DE-BY"], start=utc(2026, 1, 1), end=utc(2026, 12, 31)
        )
    }
    assert "epiphany" in names  # a Bavarian holiday, not a national one
    national = {
        e.name
        for e in EventSchedule.from_calendars(
            ["holidays:DE"], start=utc(2026, 1, 1), end=utc(2026, 12, 31)
        )
    }
    assert "epiphany" not in national


def test_weekends_black_friday_and_christmas_season() -> None:
    schedule = EventSchedule.from_calendars(["weekends", "black_friday", "christmas_season"], **NOV)
    weekends = [e for e in schedule if e.name == "weekend"]
    assert all(e.start.weekday() == 5 and e.end - e.start == timedelta(days=2) for e in weekends)
    assert len(weekends) == 9  # Sun 1 Nov's weekend (from Sat 31 Oct) through Sat 26 Dec
    (black_friday,) = [e for e in schedule if e.name == "black_friday"]
    assert (black_friday.start, black_friday.end, black_friday.kind) == (
        utc(2026, 11, 27),
        utc(2026, 12, 1),
        "season",
    )
    (christmas,) = [e for e in schedule if e.name == "christmas_season"]
    assert (christmas.start, christmas.end) == (utc(2026, 12, 1), utc(2026, 12, 27))


def test_unknown_calendars_and_countries_name_their_position() -> None:
    with pytest.raises(
        EventFeedError, match=r"events.calendars:2: calendar: unknown calendar 'easter'"
    ):
        EventSchedule.from_calendars(["weekends", "easter"], **NOV)
    with pytest.raises(
        EventFeedError, match=r"events.calendars:1: calendar: .*no calendar for country 'XX'"
    ):
        EventSchedule.from_calendars(["holidays:XX"], **NOV)


def test_load_merges_the_file_and_calendars_of_the_demo_stack() -> None:
    config = load_stack("demo", ROOT)
    spec = EventsSpec(file=config.events.file, calendars=["holidays:US"])
    schedule = EventSchedule.load(spec, root=ROOT, start=utc(2026, 11, 9), end=utc(2026, 11, 30))
    names = {e.name for e in schedule}
    assert "thanksgiving_day" in names and "black-friday-early-access" in names


# ----------------------------------------------------------------- what the engine and rules read

SALE = Event(
    name="winter-sale",
    kind="campaign",
    start=utc(2026, 12, 1, 8),
    end=utc(2026, 12, 1, 20),
    uplift=1.5,
)
FLASH = Event(
    name="flash", kind="campaign", start=utc(2026, 12, 1, 10), end=utc(2026, 12, 1, 11), uplift=2.0
)
OUTAGE = Event(
    name="maintenance",
    kind="release",
    start=utc(2026, 12, 1, 22),
    end=utc(2026, 12, 1, 23),
    uplift=0.5,
)
DEPLOY = Event(name="v3", kind="release", start=utc(2026, 12, 1, 9), end=utc(2026, 12, 1, 9, 30))


def test_active_gives_names_and_kinds_with_exclusive_end() -> None:
    schedule = EventSchedule([SALE, DEPLOY])
    assert schedule.active(utc(2026, 12, 1, 9, 15)) == {"winter-sale", "campaign", "v3", "release"}
    assert schedule.active(utc(2026, 12, 1, 8)) == {"winter-sale", "campaign"}
    assert schedule.active(utc(2026, 12, 1, 20)) == frozenset()
    assert schedule.active(datetime(2026, 12, 1, 12)) == {"winter-sale", "campaign"}, "naive is UTC"


def test_regressors_are_one_float_column_per_kind_aligned_to_the_index() -> None:
    index = pd.date_range("2026-12-01T07:00", periods=6, freq="1h", tz="Europe/Berlin")  # 06:00Z ..
    frame = EventSchedule([SALE, DEPLOY]).regressors(index)
    assert list(frame.columns) == ["event_campaign", "event_release"]
    assert str(frame.index.tz) == "UTC" and (frame.index == index).all()
    assert frame.dtypes.eq(float).all()
    assert frame["event_campaign"].tolist() == [0, 0, 1, 1, 1, 1]
    assert frame["event_release"].tolist() == [0, 0, 0, 1, 0, 0]


def test_regressors_of_an_empty_schedule_have_no_columns() -> None:
    index = pd.date_range("2026-12-01", periods=3, freq="1h")
    frame = EventSchedule().regressors(index)
    assert frame.shape == (3, 0) and str(frame.index.tz) == "UTC"


def test_uplift_is_one_outside_events_and_the_largest_where_they_overlap() -> None:
    index = pd.date_range("2026-12-01T07:00Z", "2026-12-01T22:00Z", freq="1h")
    factor = EventSchedule([SALE, FLASH, OUTAGE, DEPLOY]).uplift(index)
    expected = pd.Series(1.0, index=index)
    expected["2026-12-01T08:00Z":"2026-12-01T19:00Z"] = 1.5
    expected["2026-12-01T10:00Z"] = 2.0
    expected["2026-12-01T22:00Z"] = 0.5  # a planned dip applies where nothing else does
    np.testing.assert_array_equal(factor, expected.to_numpy())


def test_merged_schedules_keep_identical_events_once() -> None:
    merged = EventSchedule([SALE, DEPLOY]).merged(EventSchedule([DEPLOY, FLASH]))
    assert merged.events == (SALE, DEPLOY, FLASH)
    assert len(merged) == 3
