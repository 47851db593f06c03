"""The guard around TextWorld and Fast Downward calls (sdar_gym/envs/alfworld/textworld_calls.py)."""
import io
import sys
import threading

import pytest

from sdar_gym.envs.alfworld.textworld_calls import textworld_call


def test_other_threads_output_is_not_swallowed_by_the_translator_log_capture(monkeypatch):
    """Fast Downward captures its translator's log by pointing sys.stdout at a StringIO; what an env
    server's other threads printed meanwhile was lost. Only the translating thread's output is captured now."""
    interface = pytest.importorskip("fast_downward.interface")
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stdout", terminal)
    capturing, printed = threading.Event(), threading.Event()

    def other_thread() -> None:
        capturing.wait(5)
        for i in range(20):
            print(f"server line {i}")
        printed.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with textworld_call():
        with interface.CapturingStdout() as translator_log:  # what pddl2sas does while it translates
            print("translator line")
            capturing.set()
            assert printed.wait(5)
    thread.join(5)
    assert [f"server line {i}" in terminal.getvalue() for i in range(20)] == [True] * 20
    assert translator_log == ["translator line"]
    assert "translator line" not in terminal.getvalue()
    assert sys.stdout is terminal
