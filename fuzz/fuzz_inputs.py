"""Coverage-guided fuzzing (atheris / libFuzzer) of every user input mirrorcast parses.

    .venv/bin/python fuzz/fuzz_inputs.py stack -runs=100000
    .venv/bin/python fuzz/fuzz_inputs.py rule -max_total_time=600

Targets: ``stack`` (stack-file YAML), ``rule`` (rule text), ``events-csv``, ``events-yaml`` and
``metrics-csv``. Each input must parse or raise the input's own typed error (``ConfigError``,
``RuleError``, ``EventFeedError``, ``SourceError``); anything else is a crash that libFuzzer
reports with the input that caused it. Extra arguments go to libFuzzer. Needs the ``fuzz``
extra (``pip install -e '.[fuzz]'``).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["infra", "policies", "forecasting"]):
    from forecasting.events import EventFeedError, EventSchedule
    from forecasting.sources import FileMetricSource, SourceError
    from infra.config import ConfigError, FileSource, MetricSpec, config_from_text
    from policies import RuleError, parse_rule

logger = logging.getLogger(__name__)

_SCRATCH = Path(tempfile.mkdtemp(prefix="mirrorcast-fuzz-"))
_T0 = datetime(1970, 1, 2, tzinfo=UTC)
_T1 = datetime(2200, 1, 1, tzinfo=UTC)


def _text(data: bytes) -> str:
    return atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))


def fuzz_stack(data: bytes) -> None:
    """A stack file's text: a config or a ``ConfigError``."""
    try:
        config_from_text(_text(data), source="fuzz.yaml")
    except ConfigError as error:
        assert str(error).strip()


def fuzz_rule(data: bytes) -> None:
    """A rule's ``when`` text: a condition or a ``RuleError`` with a position."""
    try:
        parse_rule(_text(data))
    except RuleError as error:
        assert error.line >= 1 and error.column >= 1


def _events(suffix: str) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        path = _SCRATCH / f"events{suffix}"
        path.write_bytes(data)
        try:
            EventSchedule.from_file(path)
        except EventFeedError as error:
            assert str(error).startswith(str(path))

    return target


def fuzz_metrics_csv(data: bytes) -> None:
    """A metrics CSV: a series or a ``SourceError`` naming the file."""
    path = _SCRATCH / "metrics.csv"
    path.write_bytes(data)
    source = FileMetricSource(FileSource(path=str(path)), root=_SCRATCH)
    try:
        source.fetch(pool="web", metric="cpu", spec=MetricSpec(), start=_T0, end=_T1)
    except SourceError as error:
        assert "metrics.csv" in str(error)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "stack": fuzz_stack,
    "rule": fuzz_rule,
    "events-csv": _events(".csv"),
    "events-yaml": _events(".yaml"),
    "metrics-csv": fuzz_metrics_csv,
}


def main(argv: list[str]) -> None:
    """``fuzz_inputs.py TARGET [libFuzzer options]``."""
    if len(argv) < 2 or argv[1] not in TARGETS:
        raise SystemExit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    logging.disable(logging.CRITICAL)
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
