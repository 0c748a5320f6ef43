"""A job shared with a fork (``parallel.in_two``) when an interrupt comes at the worst moment: just after the fork.

The readers and folds that use it are tested with forks that fail in every
other way (test_projections.py, test_replay.py, test_spool.py).
"""

from __future__ import annotations

import os
import signal

import pytest

from events_log import parallel


@pytest.mark.parametrize("interrupted", ["the fork", "this process", "both"])
def test_an_interrupt_just_after_the_fork_runs_none_of_this_process_code_in_the_fork(
    tmp_path, monkeypatch, interrupted
):
    """A Ctrl-C reaches the whole process group: in the fork it must only end the fork (it holds this process's
    files, and with them its lock on the log), and here it must not leave the fork behind, nor its files."""
    parent, fork, forks = os.getpid(), os.fork, []

    def fork_then_interrupt() -> int:
        pid = fork()
        forks.append(pid)
        if interrupted == "both" or (pid == 0) == (interrupted == "the fork"):
            signal.raise_signal(signal.SIGINT)
        return pid

    monkeypatch.setattr(os, "fork", fork_then_interrupt)
    escaped = tmp_path / "escaped"
    open_files = len(os.listdir("/proc/self/fd"))
    try:
        items = list(parallel.in_two(lambda: iter(range(3)), lambda: iter(range(3, 10))))
    except KeyboardInterrupt:
        if os.getpid() != parent:  # the fork ran its caller's code: say so, and leave
            escaped.write_text("the fork ran this process's code")
            os._exit(0)
        items = None
    assert not escaped.exists()
    if interrupted == "the fork":
        assert items == list(range(10))  # the fork died: this process did its part
    else:
        assert items is None
    with pytest.raises(ChildProcessError):
        os.waitpid(forks[0], os.WNOHANG)  # waited for already
    assert len(os.listdir("/proc/self/fd")) == open_files


@pytest.mark.parametrize("room", [0, 1 << 62])
def test_a_fork_is_made_only_where_the_temporary_folder_has_the_room_asked_for(room):
    """What the fork sends waits in the temporary folder: with less room free there than the job asks, this
    process does the whole job itself, and the result is the same."""
    parent = os.getpid()

    def rest():
        yield os.getpid() == parent
        yield from range(3)

    assert list(parallel.in_two(lambda: iter(()), rest, room=room)) == [room > 0, 0, 1, 2]
