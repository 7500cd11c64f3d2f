"""SIGTERM / SIGINT as a request to stop (jgan.preemption), in-process: signals raised in this thread.

The real processes (a signal during start-up, two SIGTERMs 50 ms apart, a signal during the emergency
save, exit 75) are in tests/test_faults.py.
"""

import signal

from jgan import preemption


def test_preemption_guard_turns_signals_into_a_flag_and_absorbs_repeats(capfd):
  before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
  with preemption.PreemptionGuard() as outer:
    signal.raise_signal(signal.SIGTERM)  # delivered to this thread; the handler runs before the next line
    assert outer.signal == "SIGTERM"
    with preemption.PreemptionGuard() as guard:  # the training loop's guard, inside jgan train's
      assert guard.signal == "SIGTERM"  # takes over what the outer guard caught (during start-up)
      for s in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):  # a scheduler's repeats, a Ctrl-C
        signal.raise_signal(s)
      assert guard.signal == "SIGTERM" and guard.repeats == 3  # the process is still alive: absorbed
    assert signal.getsignal(signal.SIGTERM) == outer._handle  # handed back to the outer guard
  assert {s: signal.getsignal(s) for s in before} == before
  err = capfd.readouterr().err
  assert err.count("received again: still stopping; SIGKILL ends the run at once") == 3, err
  with preemption.PreemptionGuard() as fresh:
    assert fresh.signal is None and fresh.repeats == 0


def test_the_start_up_line_says_nothing_was_saved():
  line = preemption.startup_message("SIGTERM", "resume with: jgan train ...")
  assert line == (
    "SIGTERM received during start-up, before the first step: nothing was saved by this run; "
    "resume with: jgan train ..."
  )


def test_importing_preemption_loads_no_jax():
  """jgan train installs its guard before its slow imports: the module must not import JAX."""
  import subprocess
  import sys

  code = "import sys, jgan.preemption; print('jax' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert out.stdout.strip() == "False", out.stderr[-2000:]
