"""A recording stand-in for the Pulumi CLI, at the Automation API's own seam.

:class:`StandInPulumi` is a ``pulumi.automation.PulumiCommand`` subclass: the real
``pulumi.automation`` code builds the real command lines and hands them to ``run``, which
records them and plays :class:`standin_model.StackModel` (see there for what is modelled and
which failures can be queued) instead of executing a binary.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi.automation import PulumiCommand
from pulumi.automation._cmd import CommandResult, OnOutput
from pulumi.automation.errors import create_command_error
from semver import VersionInfo
from standin_model import StackModel, play

__all__ = ["StandInPulumi"]


class StandInPulumi(PulumiCommand):
    """A ``PulumiCommand`` that records command lines and plays :class:`StackModel`.

    :param hang_seconds: how long a ``hang`` failure keeps the command running; default 5 s.
    """

    def __init__(self, *, hang_seconds: float = 5.0) -> None:
        # Deliberately no super().__init__: that execs `pulumi version`.
        self.command = "pulumi"
        # Below 3.205 the Automation API reads engine events from a file, which the model writes.
        self.version = VersionInfo(3, 200, 0)
        self.model = StackModel()
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []
        self.hang_seconds = hang_seconds

    def fail(self, op: str, *kinds: str) -> None:
        """Queue failures for the next ``op`` (``up`` or ``refresh``) invocations."""
        self.model.failures.setdefault(op, []).extend(kinds)

    def commands(self, *prefix: str) -> list[list[str]]:
        """Recorded calls (without ``--non-interactive``) starting with ``prefix``."""
        out = []
        for call in self.calls:
            words = [a for a in call if a != "--non-interactive"]
            if words[: len(prefix)] == list(prefix):
                out.append(words)
        return out

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> CommandResult:
        if "--non-interactive" not in args:
            args.insert(0, "--non-interactive")
        self.calls.append(list(args))
        self.envs.append(dict(additional_env))
        code, stdout, stderr = play(self.model, list(args), cwd, hang_seconds=self.hang_seconds)
        result = CommandResult(stdout=stdout, stderr=stderr, code=code)
        if code != 0:
            raise create_command_error(result)
        return result
