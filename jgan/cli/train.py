"""``jgan train --config FILE[:ARG] --workdir DIR [--config.KEY=VALUE ...]``: train one GAN.

Rerun on the same --workdir to resume from its latest checkpoint; SIGTERM/Ctrl-C saves one and exits
with status 75 ("preempted, resume me"; 0 = finished, 2 = an error, one line: a bad config, a workdir
in use by another run, a read-only / full / vanished workdir, ...);
--config.checkpoint.allow_config_change=True resumes even if a result-changing field differs.
--config.train.num_seeds=K trains K seeds (seed, seed+1, ...) in one program (jgan.ensemble), each
member an ordinary run under DIR/seed=S; on a CPU host the members are split over the cores.

Multi-process (docs/multihost.md): add --distributed (SLURM, Open MPI, TPU pods, Kubernetes: detected),
or --coordinator_address HOST:PORT --num_processes N --process_id I; --distributed_timeout S bounds the
rendezvous (default 300 s).
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time


def one_line(e: BaseException) -> str:
  """An exception's message on one line (multi-line messages joined with spaces)."""
  return " ".join(line.strip() for line in str(e).splitlines() if line.strip())


def _quiet_thread_errors() -> None:
  """Filesystem errors in background threads (TensorBoard's writer on a full disk) as one line each, and
  no traceback for callbacks into a closed event loop after a failed save; the main thread reports the
  failure itself. Other exceptions keep Python's traceback."""
  default = threading.excepthook

  def hook(args):
    if isinstance(args.exc_value, OSError):
      name = args.thread.name if args.thread is not None else "a thread"
      print(f"warning: {name}: {one_line(args.exc_value)}", file=sys.stderr)
      return
    default(args)

  threading.excepthook = hook

  # TensorStore callbacks of a failed save may still fire after Orbax closed their asyncio loop; the
  # RuntimeError reaches sys.excepthook from C++ (a bare traceback each). The failure is reported anyway.
  default_sys = sys.excepthook

  def sys_hook(kind, value, tb):
    if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
      return
    default_sys(kind, value, tb)

  sys.excepthook = sys_hook
  default_unraisable = sys.unraisablehook

  def unraisable_hook(u):
    if isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == "Event loop is closed":
      return
    code = getattr(u.object, "cr_code", None)  # Orbax's read coroutines of a damaged checkpoint, closed
    if code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename:
      return
    default_unraisable(u)

  sys.unraisablehook = unraisable_hook


def _quiet_orbax_tracebacks() -> None:
  """Orbax logs a failed background save with ERROR records carrying tracebacks and TensorStore specs;
  jgan reports the failure in one line, so those records keep the first 300 characters of their message."""
  import logging as py_logging

  class StripTraceback(py_logging.Filter):
    def filter(self, record):
      if "orbax" in (record.pathname or "") and record.levelno >= py_logging.ERROR:
        record.msg, record.args = one_line(Exception(record.getMessage()))[:300], ()
        record.exc_info, record.exc_text = None, None
      return True

  py_logging.getLogger("absl").addFilter(StripTraceback())

  class DropUnretrieved(py_logging.Filter):
    def filter(self, record):  # the failed reads of a damaged checkpoint, already reported as a warning
      return "exception was never retrieved" not in record.getMessage()

  py_logging.getLogger("asyncio").addFilter(DropUnretrieved())


def exit_now_if_threads_linger(code: int, grace_s: float = 5.0) -> int:
  """Returns ``code``, or ends the process with it when Orbax's background threads outlive ``grace_s``.

  After a failed checkpoint save Orbax may leave background threads waiting for signals that never
  come (up to its 300 s coordination timeout); the interpreter would wait for them at exit. The error
  is reported by then, so the process ends at once with its status.
  """
  deadline = time.monotonic() + grace_s
  while True:
    alive = [t for t in threading.enumerate() if type(t).__module__.startswith("orbax") and t.is_alive()]
    if not alive:
      return code
    if time.monotonic() >= deadline:
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(code)
    alive[0].join(0.1)


def _workdir_in(argv) -> str | None:
  """The value of ``--workdir`` in ``argv`` (``--workdir DIR`` or ``--workdir=DIR``), if any."""
  for i, a in enumerate(argv):
    if a == "--workdir" and i + 1 < len(argv):
      return argv[i + 1]
    if a.startswith("--workdir="):
      return a.split("=", 1)[1]
  return None


def main(argv, *, until_exit: bool = False) -> int:
  """Trains the config given in ``argv`` (no program name); 0 when done, 75 (``preemption.EXIT_PREEMPTED``)
  when a signal stopped it (after saving a checkpoint, or during start-up with nothing saved), 2 on an error.

  ``until_exit``: the process's own command line (``jgan``, ``python -m jgan``, launch.py): the signal
  guard stays installed until the process ends, so a signal during its exit cannot change the status.
  """
  from jgan import preemption  # no JAX: installed before the slow imports

  # From here on SIGTERM / SIGINT stop the run with status 75, never kill it; the training loop's own
  # guard takes over a signal caught here (during imports and set-up).
  guard = preemption.PreemptionGuard().__enter__()
  try:
    return _main(argv, guard)
  finally:
    if not until_exit:
      guard.__exit__(None, None, None)


def _main(argv, guard) -> int:
  from jgan import preemption
  from jgan.cli import flags

  if flags.help_requested(argv, __doc__):
    return 0
  early = _workdir_in(argv)
  if early:  # a workdir that cannot be one, or in use, is refused before the (slow) imports
    from jgan import workdir as workdir_lib

    try:
      workdir_lib.check_path(early)
    except workdir_lib.WorkdirError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    held = workdir_lib.WorkdirLock(early).live_holder()
    if held:
      print(f"error: {held}", file=sys.stderr)
      return 2
  from absl import logging

  from jgan import checkpoint, multihost
  from jgan import workdir as workdir_lib

  logging.set_verbosity(logging.WARNING)  # absl's INFO lines (backend probing, TFDS) drown the progress bar
  _quiet_orbax_tracebacks()
  _quiet_thread_errors()
  try:
    dist_kwargs, config_argv = multihost.pop_flags(argv)
    config, workdir = flags.parse_cli(config_argv, prog="jgan train")
    from jgan import config as config_lib

    config_lib.resolve(config)  # every value checked here, before devices, data or compilation
  except ValueError as e:
    print(f"error: {one_line(e)}", file=sys.stderr)
    return 2

  if dist_kwargs is not None:  # before anything touches a device
    try:
      multihost.initialize(**dist_kwargs)
    except multihost.DistributedError as e:
      print(f"error: {one_line(e)}", file=sys.stderr)
      return 2
  num_seeds = int(config.train.get("num_seeds", 1))
  if num_seeds > 1:
    from jgan import ensemble

    ensemble.use_cpu_cores()  # before any JAX work: on a CPU host, members are split over the cores
  from jgan import train

  # Rerunning the same command on the same workdir resumes from its latest checkpoint.
  resume = f"cd {shlex.quote(os.getcwd())} && {shlex.join([sys.executable, *sys.argv])}"
  if guard.signal is not None and dist_kwargs is None:  # several processes agree in the loop instead
    print(preemption.startup_message(guard.signal, train.resume_hint(workdir, resume)), file=sys.stderr)
    return preemption.EXIT_PREEMPTED
  try:
    if num_seeds > 1:
      result = ensemble.train_ensemble(config, workdir)
      # The running members share their step count (frozen ones stopped earlier).
      state = ensemble.member_state(result.state, int(result.alive.argmax()))
    else:
      state = train.train_and_evaluate(config, workdir, resume_command=resume)
  except (
    ValueError,
    FileNotFoundError,
    FloatingPointError,
    checkpoint.CheckpointError,
    workdir_lib.WorkdirLocked,
    workdir_lib.WorkdirError,
  ) as e:
    print(f"error: {one_line(e)}", file=sys.stderr)
    return exit_now_if_threads_linger(2)
  # Stopped by SIGTERM / SIGINT with a checkpoint saved: say so to the scheduler (requeue me).
  return preemption.EXIT_PREEMPTED if int(state.step) < config.train.steps else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
