"""The state directory: tightened when others can reach it, and no symbolic link in it is followed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from driver.journal import Journal, default_journal_url
from driver.state import StateDirError, state_dir, state_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_existing_world_writable_state_dir_is_tightened_to_0700(
    private_state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private_state.mkdir(parents=True)
    private_state.chmod(0o777)

    assert state_dir() == private_state

    assert _mode(private_state) == 0o700
    assert "tightened the state directory" in caplog.text and "0777" in caplog.text


def test_a_symlink_planted_as_the_journal_is_refused_and_its_target_untouched(
    private_state: Path, tmp_path: Path
) -> None:
    private_state.mkdir(parents=True, mode=0o700)
    target = tmp_path / "someone-elses-file"
    target.write_text("precious\n")
    target.chmod(0o644)
    (private_state / "journal.db").symlink_to(target)

    with pytest.raises(StateDirError, match=r"journal\.db is a symbolic link .*not follow links"):
        Journal()

    # Before: the journal chmod-ed the link's target to 0600 and wrote SQLite into it.
    assert _mode(target) == 0o644 and target.read_text() == "precious\n"


@pytest.mark.parametrize("name", ["journal.db-wal", "journal.db-shm"])
def test_a_symlink_planted_as_sqlites_side_files_is_refused_too(
    private_state: Path, tmp_path: Path, name: str
) -> None:
    private_state.mkdir(parents=True, mode=0o700)
    (private_state / name).symlink_to(tmp_path / "elsewhere")

    with pytest.raises(StateDirError, match=name):
        default_journal_url()


def test_a_symlinked_backend_or_model_cache_is_refused(private_state: Path, tmp_path: Path) -> None:
    private_state.mkdir(parents=True, mode=0o700)
    (tmp_path / "elsewhere").mkdir()
    (private_state / "backend").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(StateDirError, match="backend is a symbolic link"):
        state_path("backend")
    assert state_path("models") == private_state / "models"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to create a directory another user owns")
def test_a_world_writable_state_dir_of_another_user_is_refused(private_state: Path) -> None:
    private_state.mkdir(parents=True)
    os.chown(private_state, 65534, 65534)
    private_state.chmod(0o777)

    with pytest.raises(StateDirError, match=r"belongs to another user \(uid 65534\)"):
        state_dir()
