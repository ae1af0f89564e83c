"""Progress of a ``pulumi up`` from the engine's event stream.

On a terminal a Rich progress bar counts resources as the engine finishes them; elsewhere
(a service, a container) each finished or failed resource is a log line, so journald and
``kubectl logs`` show the same story.
"""

from __future__ import annotations

import logging
from typing import Any

from pulumi.automation import EngineEvent
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from driver.redact import redact_text

__all__ = ["UpdateProgress"]

logger = logging.getLogger(__name__)


class UpdateProgress:
    """An ``on_event`` callback for ``Stack.up``.

    :param title: the bar's label; default ``"pulumi up"``.
    :param console: where to draw; default stderr. No bar is drawn unless it is a terminal.
    """

    def __init__(self, *, title: str = "pulumi up", console: Console | None = None) -> None:
        self.title = title
        self.console = console or Console(stderr=True)
        self.started = 0
        self.finished = 0
        self.failed: list[str] = []
        self.summary: dict[str, Any] | None = None
        self._progress: Progress | None = None
        self._task: Any = None

    def __call__(self, event: EngineEvent) -> None:
        if event.resource_pre_event is not None:
            self.started += 1
            self._draw()
        elif event.res_outputs_event is not None:
            self.finished += 1
            meta = event.res_outputs_event.metadata
            if self._progress is None:
                logger.info("%s: %s %s", self.title, meta.op.value if meta.op else "done", meta.urn)
            self._draw()
        elif event.res_op_failed_event is not None:
            urn = event.res_op_failed_event.metadata.urn
            self.failed.append(urn)
            logger.warning("%s: failed on %s", self.title, urn)
        elif event.diagnostic_event is not None and event.diagnostic_event.severity == "error":
            logger.warning(
                "%s: %s", self.title, redact_text(event.diagnostic_event.message.strip())
            )
        elif event.summary_event is not None:
            self.summary = {
                str(k): v for k, v in (event.summary_event.resource_changes or {}).items()
            }
            logger.info("%s: finished, changes %s", self.title, self.summary)

    def _draw(self) -> None:
        if not self.console.is_terminal:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.title, total=None)
        # The engine announces resources as it reaches them, so the total grows as it goes.
        self._progress.update(self._task, total=max(self.started, 1), completed=self.finished)

    def close(self) -> None:
        """Remove the bar (called when the update ends, however it ends)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
