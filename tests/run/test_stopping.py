"""Stop signals in a process that goes on after a stopped run (bench.run.stopping)."""

from __future__ import annotations

import signal

from bench.run import stopping


def test_a_stopped_run_leaves_the_process_handling_stop_signals_as_before() -> None:
    """Inside, a stopped run ignores later signals (its row must not be cut); after, Ctrl-C is Ctrl-C again and no
    signal is remembered, as a Ray worker's next task needs."""
    before = {s: signal.getsignal(s) for s in (*stopping.STOP_SIGNALS, signal.SIGUSR2)}
    with stopping.restored_after():
        stopping.stop_on_signals()
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:
            pass
        assert stopping.received() == signal.SIGTERM
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in stopping.STOP_SIGNALS)  # held off
    assert {s: signal.getsignal(s) for s in before} == before
    assert stopping.received() == signal.SIGINT  # none seen


def test_ctrl_c_interrupts_a_process_that_started_with_it_ignored() -> None:
    """A Ray worker started from a background command inherits SIGINT ignored; a run in it must still stop."""
    with stopping.restored_after():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stopping.interruptible()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
