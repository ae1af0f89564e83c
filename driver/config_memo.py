"""The stack config a long-running driver decides on, parsed again only when it changed.

Parsing and validating the stack file costs about 7 ms per pool (ruamel's round-trip parser,
then pydantic): 70-85 s a cycle at 10,000 pools, for a file that changes a few times a day. The
driver reads the file's bytes every cycle (milliseconds even for megabytes) and parses them
only when their digest, or the digest of a pool's ``rules_file``, differs from the last parse.
The parsed config is a frozen pydantic model, so handing the same object to every cycle is safe.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from driver.stack_config import load_driver_config, load_driver_config_text
from infra.config import MAX_STACK_FILE_BYTES, MirrorcastConfig, stack_file_path

__all__ = ["StackConfigMemo"]

logger = logging.getLogger(__name__)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Parsed:
    digest: str
    rules: tuple[tuple[str, str], ...]
    config: MirrorcastConfig


class StackConfigMemo:
    """One stack's config (rules files merged in), re-parsed when its text or rules change.

    :param stack: the stack name (``stacks/Pulumi.<stack>.yaml``).
    :param root: the project root.
    """

    def __init__(self, *, stack: str, root: Path) -> None:
        self.stack = stack
        self.root = root
        self.parses = 0
        """How often the config was actually parsed (the rest were reuses)."""
        self._last: _Parsed | None = None

    def load(self, text: str | None = None, *, source: str | None = None) -> MirrorcastConfig:
        """The config from the stack file, or from ``text`` (gitops: the base branch's copy).

        :param text: default ``None`` (read ``stacks/Pulumi.<stack>.yaml``).
        :param source: where ``text`` came from, for error messages.
        :raises infra.config.ConfigError: as :func:`driver.stack_config.load_driver_config`.
        """
        path = stack_file_path(self.stack, self.root)
        if text is None:
            try:
                too_big = path.stat().st_size > MAX_STACK_FILE_BYTES
            except OSError:
                too_big = True
            if too_big:  # missing or oversized: the loader says so, naming the file
                self._last = None
                return load_driver_config(self.stack, self.root)
            data = path.read_bytes()
            text = data.decode("utf-8", errors="strict")
            source = str(path)
        else:
            data = text.encode("utf-8")
        digest = _digest(data)
        last = self._last
        if last is not None and last.digest == digest and last.rules == self._rules(last.config):
            return last.config
        config = load_driver_config_text(
            text, source=source or str(path), stack=self.stack, root=self.root
        )
        self.parses += 1
        self._last = _Parsed(digest, self._rules(config), config)
        return config

    def _rules(self, config: MirrorcastConfig) -> tuple[tuple[str, str], ...]:
        """Each pool's rules file with the digest of its bytes now (``missing``: none)."""
        base = stack_file_path(self.stack, self.root).resolve().parent
        out: list[tuple[str, str]] = []
        for pool in config.pools.values():
            if pool.rules_file is None:
                continue
            path = (base / pool.rules_file).resolve()
            try:
                out.append((str(path), _digest(path.read_bytes())))
            except OSError:
                out.append((str(path), "missing"))
        return tuple(out)
