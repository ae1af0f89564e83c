"""Known events that move demand: campaign and release schedules, holidays and seasons.

A schedule comes from a CSV or YAML file written by people (marketing, release managers) and
from named calendars (``holidays:US``, ``weekends``, ``black_friday``, ``christmas_season``).
The engine turns it into exogenous regressors (one 0/1 column per event kind) for models that
take them, and into a configured multiplicative uplift for models that do not; the rule
language asks :meth:`EventSchedule.active` whether ``during(campaign)`` holds.

All times are UTC. An event covers ``start <= t < end``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from infra.config import EventsSpec, UserError, check_yaml_limits

__all__ = [
    "CALENDARS",
    "MAX_EVENT_FILE_BYTES",
    "Event",
    "EventFeedError",
    "EventSchedule",
]

logger = logging.getLogger(__name__)

MAX_EVENT_FILE_BYTES = 2_000_000
"""Event files larger than this are refused: a schedule is written by people, not a data dump."""

CALENDARS: tuple[str, ...] = (
    "holidays:<COUNTRY>[-<SUBDIV>]",
    "weekends",
    "black_friday",
    "christmas_season",
)
"""The calendar names :meth:`EventSchedule.from_calendars` understands."""

_FIELDS = ("name", "kind", "start", "end", "uplift")
_KIND = re.compile(r"^[a-z][a-z0-9_]*$")


class EventFeedError(UserError, ValueError):
    """An event file or calendar that cannot be used.

    The message reads ``<file>:<line>: <field>: <what>`` so a person can go straight to it.

    :param source: the file path (or ``events.calendars`` for a calendar name).
    :param line: 1-based line (or list position for calendars); ``None`` when it concerns the
        whole input.
    :param field: the field or column at fault (``name``, ``start``, ...); ``"file"`` for the
        whole input.
    :param what: what is wrong, as a sentence a person can act on.
    """

    def __init__(self, source: str, line: int | None, field: str, what: str) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.what = what
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {field}: {what}")


@dataclass(frozen=True)
class Event:
    """One known event.

    :param name: what people call it (``spring-sale``); rules can say ``during(<name>)``.
    :param start: first instant, tz-aware (converted to UTC).
    :param end: first instant after the event (exclusive), tz-aware (converted to UTC).
    :param kind: ``campaign`` (default), ``release``, ``holiday``, ``season``, ``weekend``, ...;
        rules can say ``during(<kind>)`` and the engine makes one regressor per kind.
    :param uplift: configured multiplicative demand factor over the window (``1.5`` = +50%);
        ``None`` lets the engine learn the effect from history instead.
    """

    name: str
    start: datetime
    end: datetime
    kind: str = "campaign"
    uplift: float | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an event needs a name")
        if not _KIND.match(self.kind):
            raise ValueError(
                f"event kind {self.kind!r} must be lower case letters, digits and '_' "
                "(for example campaign, release, holiday, season)"
            )
        for label, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"event {self.name!r}: {label} must be time-zone aware")
        # Normalise to UTC so comparisons and pandas alignment never mix zones.
        object.__setattr__(self, "start", _plain_utc(self.start))
        object.__setattr__(self, "end", _plain_utc(self.end))
        if self.end <= self.start:
            raise ValueError(
                f"event {self.name!r}: end ({self.end.isoformat()}) must be after start "
                f"({self.start.isoformat()})"
            )
        if self.uplift is not None and (not math.isfinite(self.uplift) or self.uplift <= 0):
            raise ValueError(
                f"event {self.name!r}: uplift must be a positive factor such as 1.5, got {self.uplift}"
            )

    def covers(self, at: datetime) -> bool:
        """Whether ``at`` (tz-aware) falls in ``[start, end)``."""
        return self.start <= at < self.end


class EventSchedule:
    """An immutable set of :class:`Event`, sorted by start.

    :param events: the events; duplicates (all fields equal) are kept once.
    """

    def __init__(self, events: Iterable[Event] = ()) -> None:
        unique = dict.fromkeys(events)
        self.events: tuple[Event, ...] = tuple(
            sorted(unique, key=lambda e: (e.start, e.end, e.kind, e.name))
        )

    def __repr__(self) -> str:
        return f"EventSchedule({len(self.events)} events)"

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventSchedule) and self.events == other.events

    def __hash__(self) -> int:
        return hash(self.events)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The event kinds present, sorted."""
        return tuple(sorted({e.kind for e in self.events}))

    # ------------------------------------------------------------------ building

    @classmethod
    def from_file(cls, path: Path | str) -> EventSchedule:
        """Read a schedule from CSV (header ``name,kind,start,end,uplift``) or YAML.

        YAML is either a list of mappings with those keys or a mapping with an ``events:`` list.
        ``kind`` defaults to ``campaign`` and ``uplift`` may be empty. Times are ISO 8601; a time
        without an offset is UTC; a bare date as ``start`` means that day's midnight and as ``end``
        means the *whole* day is included (the event ends at the next midnight).

        :param path: the file; its suffix (``.csv``, ``.yaml``, ``.yml``) picks the format.
        :raises EventFeedError: naming the file, line and field of the first problem.
        """
        path = Path(path)
        label = str(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise EventFeedError(
                label, None, "file", f"cannot read the event file ({exc.strerror})"
            ) from exc
        if size > MAX_EVENT_FILE_BYTES:
            raise EventFeedError(
                label,
                None,
                "file",
                f"the file is {size:,} bytes; event files are limited to {MAX_EVENT_FILE_BYTES:,} bytes",
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise EventFeedError(label, None, "file", "the file is not UTF-8 text") from exc
        suffix = path.suffix.lower()
        if suffix == ".csv":
            events = list(_parse_csv(text, label))
        elif suffix in (".yaml", ".yml"):
            events = list(_parse_yaml(text, label))
        else:
            raise EventFeedError(
                label, None, "file", f"unknown event file type {suffix!r}; use .csv, .yaml or .yml"
            )
        logger.debug("read %d events from %s", len(events), label)
        return cls(events)

    @classmethod
    def from_calendars(
        cls, names: Sequence[str], *, start: datetime, end: datetime
    ) -> EventSchedule:
        """Events from named seasonal calendars between ``start`` and ``end``.

        Calendar days are taken as UTC days.

        - ``holidays:<COUNTRY>`` or ``holidays:<COUNTRY>-<SUBDIV>`` (``holidays:US``,
          ``holidays:US-CA``, ``holidays:DE``): public holidays from the ``holidays`` package,
          kind ``holiday``, named by the holiday in snake case (``thanksgiving_day``).
        - ``weekends``: Saturday and Sunday, kind ``weekend``, name ``weekend``.
        - ``black_friday``: the Friday after US Thanksgiving through Cyber Monday, kind ``season``.
        - ``christmas_season``: 1-26 December inclusive, kind ``season``.

        :param names: calendar names as in ``events.calendars``.
        :param start: first instant wanted (tz-aware); events overlapping the range are kept whole.
        :param end: last instant wanted (tz-aware, exclusive).
        :raises EventFeedError: for an unknown calendar or country, naming its position.
        """
        lo, hi = _aware(start, "start"), _aware(end, "end")
        years = list(range(lo.year, hi.year + 1))
        events: list[Event] = []
        for position, raw in enumerate(names, start=1):
            name = raw.strip()
            if name.startswith("holidays:"):
                events.extend(_holiday_events(name, years, position))
            elif name == "weekends":
                first = lo.date() - timedelta(days=1)
                for offset in range((hi.date() - first).days + 1):
                    day = first + timedelta(days=offset)
                    if day.weekday() == 5:  # Saturday: one event per weekend, Sat 00:00 - Mon 00:00
                        events.append(_day_event("weekend", "weekend", day, days=2))
            elif name == "black_friday":
                for year in years:
                    friday = _thanksgiving(year) + timedelta(days=1)
                    events.append(_day_event("black_friday", "season", friday, days=4))
            elif name == "christmas_season":
                for year in years:
                    events.append(
                        _day_event("christmas_season", "season", date(year, 12, 1), days=26)
                    )
            else:
                raise EventFeedError(
                    "events.calendars",
                    position,
                    "calendar",
                    f"unknown calendar {name!r}; known calendars: {', '.join(CALENDARS)}",
                )
        return cls(e for e in events if e.end > lo and e.start < hi)

    @classmethod
    def load(cls, spec: EventsSpec, *, root: Path, start: datetime, end: datetime) -> EventSchedule:
        """The schedule a stack configures: its event file plus its calendars.

        :param spec: the stack's ``events`` section.
        :param root: directory that a relative ``spec.file`` is resolved against (the project root).
        :param start: start of the calendar range (tz-aware), usually the start of history.
        :param end: end of the calendar range (tz-aware), usually now plus the horizon.
        """
        schedule = cls()
        if spec.file:
            path = Path(spec.file)
            schedule = cls.from_file(path if path.is_absolute() else root / path)
        if spec.calendars:
            schedule = schedule.merged(cls.from_calendars(spec.calendars, start=start, end=end))
        return schedule

    def merged(self, other: EventSchedule) -> EventSchedule:
        """A schedule holding the events of both (identical events once)."""
        return EventSchedule((*self.events, *other.events))

    # ------------------------------------------------------------------ reading

    def active(self, at: datetime) -> frozenset[str]:
        """Names and kinds of the events in effect at ``at`` (tz-aware; naive is taken as UTC)."""
        moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        found: set[str] = set()
        for event in self.events:
            if event.start > moment:
                break  # sorted by start: nothing later can cover `moment`
            if event.covers(moment):
                found.add(event.name)
                found.add(event.kind)
        return frozenset(found)

    def regressors(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """One float 0/1 column per event kind, ``event_<kind>``, aligned to ``index``.

        :param index: timestamps (tz-aware, or naive taken as UTC); the result keeps this index
            converted to UTC. With no events the frame has no columns.
        """
        utc = _utc_index(index)
        stamps = utc.asi8
        columns: dict[str, np.ndarray] = {}
        for kind in self.kinds:
            column = np.zeros(len(utc), dtype=float)
            for event in self.events:
                if event.kind == kind:
                    column[_mask(stamps, event)] = 1.0
            columns[f"event_{kind}"] = column
        return pd.DataFrame(columns, index=utc)

    def uplift(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Configured multiplicative uplift per timestamp: 1.0 where none, the largest where several overlap.

        :param index: timestamps (tz-aware, or naive taken as UTC).
        """
        stamps = _utc_index(index).asi8
        # NaN marks "no configured event here": overlapping events do not compound, the largest
        # configured factor wins, and a lone factor below 1 (a planned outage) still applies.
        factor = np.full(len(stamps), np.nan)
        for event in self.events:
            if event.uplift is not None:
                mask = _mask(stamps, event)
                factor[mask] = np.fmax(factor[mask], event.uplift)
        factor[np.isnan(factor)] = 1.0
        return factor


# --------------------------------------------------------------------------- parsing


def _plain_utc(value: datetime) -> datetime:
    """``value`` in UTC as a plain ``datetime`` (YAML parsers hand back subclasses)."""
    u = value.astimezone(UTC)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=UTC)


def _aware(value: datetime, label: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{label} must be a time-zone aware datetime")
    return value.astimezone(UTC)


def _utc_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"expected a pandas DatetimeIndex, got {type(index).__name__}")
    utc = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    # asi8 is in the index's own resolution; make it nanoseconds to compare with event bounds.
    return utc.as_unit("ns")


def _mask(stamps: np.ndarray, event: Event) -> np.ndarray:
    lo = pd.Timestamp(event.start).as_unit("ns").value
    hi = pd.Timestamp(event.end).as_unit("ns").value
    result: np.ndarray = (stamps >= lo) & (stamps < hi)
    return result


def _day_event(name: str, kind: str, day: date, *, days: int) -> Event:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return Event(name=name, kind=kind, start=start, end=start + timedelta(days=days))


def _thanksgiving(year: int) -> date:
    """US Thanksgiving: the fourth Thursday of November."""
    first = date(year, 11, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(weeks=3)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "holiday"


def _holiday_events(name: str, years: list[int], position: int) -> list[Event]:
    import holidays  # imported lazily: only stacks with holiday calendars pay for it

    region = name.partition(":")[2].strip()
    country, _, subdiv = region.partition("-")
    if not country:
        raise EventFeedError(
            "events.calendars",
            position,
            "calendar",
            f"{name!r} needs a country code, e.g. holidays:US",
        )
    try:
        table = holidays.country_holidays(
            country.upper(), subdiv=subdiv.upper() or None, years=years
        )
    except NotImplementedError as exc:
        raise EventFeedError(
            "events.calendars",
            position,
            "calendar",
            f"{name!r}: the holidays package has no calendar for country {country.upper()!r} "
            "(use an ISO 3166 code such as US, GB, DE)",
        ) from exc
    except ValueError as exc:
        raise EventFeedError("events.calendars", position, "calendar", f"{name!r}: {exc}") from exc
    events: list[Event] = []
    for day, label in sorted(table.items()):
        # Several holidays can share a day ("Christmas Day; Observed"): one event per name.
        for part in str(label).split(";"):
            events.append(_day_event(_slug(part), "holiday", day, days=1))
    return events


def _parse_time(value: Any, *, source: str, line: int, field: str) -> tuple[datetime, bool]:
    """A UTC datetime and whether the input was a bare date."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC), True
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC), True
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise EventFeedError(
                source,
                line,
                field,
                f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-27 or 2026-11-27T09:00:00Z)",
            ) from None
    else:
        raise EventFeedError(source, line, field, "missing; give an ISO 8601 date or time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), False


def _build_event(
    record: Mapping[str, Any], *, source: str, line: int, lines: Mapping[str, int]
) -> Event:
    """Validate one record; ``lines`` gives per-field lines where the format knows them."""

    def at(field: str) -> int:
        return lines.get(field, line)

    unknown = [key for key in record if key not in _FIELDS]
    if unknown:
        raise EventFeedError(
            source,
            at(str(unknown[0])),
            str(unknown[0]),
            f"unknown field; expected {', '.join(_FIELDS)}",
        )
    name = record.get("name")
    if name is None or not str(name).strip():
        raise EventFeedError(source, at("name"), "name", "missing; every event needs a name")
    kind_raw = record.get("kind")
    kind = "campaign" if kind_raw is None or str(kind_raw).strip() == "" else str(kind_raw).strip()
    if not _KIND.match(kind):
        raise EventFeedError(
            source,
            at("kind"),
            "kind",
            f"{kind!r} must be lower case letters, digits and '_' (campaign, release, holiday, season, ...)",
        )
    start, _ = _parse_time(record.get("start"), source=source, line=at("start"), field="start")
    end, end_is_date = _parse_time(record.get("end"), source=source, line=at("end"), field="end")
    if end_is_date:
        end += timedelta(days=1)  # a bare end date includes that whole day
    if end <= start:
        raise EventFeedError(
            source, at("end"), "end", f"{end.isoformat()} is not after start {start.isoformat()}"
        )
    uplift_raw = record.get("uplift")
    uplift: float | None = None
    if uplift_raw is not None and str(uplift_raw).strip() != "":
        try:
            uplift = float(uplift_raw)
        except (TypeError, ValueError):
            raise EventFeedError(
                source,
                at("uplift"),
                "uplift",
                f"{uplift_raw!r} is not a number (e.g. 1.5 for +50%)",
            ) from None
        if not math.isfinite(uplift) or uplift <= 0:
            raise EventFeedError(
                source,
                at("uplift"),
                "uplift",
                f"must be a positive factor such as 1.5, got {uplift_raw}",
            )
    return Event(name=str(name).strip(), kind=kind, start=start, end=end, uplift=uplift)


def _parse_csv(text: str, source: str) -> Iterator[Event]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise EventFeedError(
            source, 1, "header", "the file is empty; expected a header name,kind,start,end,uplift"
        )
    for column in ("name", "start", "end"):
        if column not in header:
            raise EventFeedError(
                source, 1, column, f"missing column; the header has {', '.join(header)}"
            )
    for position, column in enumerate(header, start=1):
        if not column:
            # An empty name (a trailing or doubled comma) would otherwise render as ": :".
            raise EventFeedError(
                source,
                1,
                f"column {position}",
                f"the header has an empty column name; expected {', '.join(_FIELDS)}",
            )
        if column not in _FIELDS:
            raise EventFeedError(
                source, 1, column, f"unknown column; expected {', '.join(_FIELDS)}"
            )
    reader.fieldnames = header
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise EventFeedError(
                    source, line, "row", f"has more values than the {len(header)} columns"
                )
            if all(v is None or not str(v).strip() for v in row.values()):
                continue  # blank line
            if any(v is None for v in row.values()):
                raise EventFeedError(
                    source, line, "row", f"has fewer values than the {len(header)} columns"
                )
            yield _build_event(row, source=source, line=line, lines={})
    except csv.Error as exc:
        raise EventFeedError(source, reader.line_num, "row", f"malformed CSV ({exc})") from None


def _parse_yaml(text: str, source: str) -> Iterator[Event]:
    yaml = YAML(typ="rt")
    try:
        check_yaml_limits(text)  # alias bombs and deep nesting, with their line
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise EventFeedError(source, line, "yaml", f"not valid YAML: {exc.problem}") from None
    except YAMLError as exc:
        raise EventFeedError(source, None, "yaml", f"not valid YAML: {exc}") from None
    if document is None:
        return
    items = document
    if isinstance(document, CommentedMap):
        if "events" not in document or len(document) != 1:
            raise EventFeedError(
                source,
                1,
                "events",
                "a mapping must hold exactly one key, events, with a list of events",
            )
        items = document["events"]
        if items is None:
            return
    if not isinstance(items, CommentedSeq):
        raise EventFeedError(
            source, 1, "events", "expected a list of events (name, kind, start, end, uplift)"
        )
    for position, item in enumerate(items):
        line = items.lc.item(position)[0] + 1
        if not isinstance(item, CommentedMap):
            raise EventFeedError(
                source, line, "event", "each event must be a mapping with name, start, end"
            )
        lines = {str(key): item.lc.key(key)[0] + 1 for key in item}
        yield _build_event(dict(item), source=source, line=line, lines=lines)
