"""The first Python a run's SLURM job executes: it holds SIGUSR2, then hands over to submitit.

SLURM sends the time-limit warning (``--signal=USR2@N``) "up to 60 seconds earlier than specified" (sbatch(1)), so
in a short job it can come while the job's Python is still importing submitit, torch and the harness, seconds
before the run can install a handler; SIGUSR2's default action then kills the task unrecorded. The executor's
jobs therefore start here (submitit's ``python`` is ``PYTHON -u -m bench.executors.slurm_start``): the signal is
blocked by the first statement below, before any import of weight, so one that comes early waits, pending, until
the job has its handler in place and lets it through (``bench.executors.slurm``), which delivers it as the stop it
is. Only the interpreter's own start-up comes before; a signal in that moment ends the task with exit 140
(128 + SIGUSR2), which the driver reads as the time limit too.
"""

import signal

if __name__ == "__main__":  # first of all (and never on a mere import of this module)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})  # threads started from now on inherit the mask

import runpy  # noqa: E402 (after the mask, on purpose)
import sys  # noqa: E402

MODULE = "bench.executors.slurm_start"


def main(argv: list[str]) -> None:
    """Run the module submitit's command names (``-u -m MODULE ARGS...``) as ``python -m`` would."""
    args = [a for a in argv if a != "-u"]  # this interpreter is unbuffered already
    if len(args) < 2 or args[0] != "-m":
        raise SystemExit(f"usage: python -u -m {MODULE} -u -m MODULE [ARGS...] (got {' '.join(argv)!r})")
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
