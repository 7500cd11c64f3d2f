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
    except (ValueError, workdir_lib.WorkdirError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    held = workdir_lib.make_lock(early).live_holder()
    if held:
      print(f"error: {held}", file=sys.stderr)
      return 2
  from absl import logging

  from jgan import checkpoint, checkpoint_orbax, multihost
  from jgan import filesystem_errors as fs_errors
  from jgan import workdir as workdir_lib

  logging.set_verbosity(logging.WARNING)  # absl's INFO lines (backend probing, TFDS) drown the progress bar
  checkpoint_orbax.install_process_hooks()
  try:
    dist_kwargs, config_argv = multihost.pop_flags(argv)
    config, workdir = flags.parse_cli(config_argv, prog="jgan train")
    from jgan import config as config_lib

    config_lib.resolve(config)  # every value checked here, before devices, data or compilation
  except ValueError as e:
    print(f"error: {checkpoint_orbax.one_line(e)}", file=sys.stderr)
    return 2

  if dist_kwargs is not None:  # before anything touches a device
    try:
      multihost.initialize(**dist_kwargs)
    except multihost.DistributedError as e:
      print(f"error: {checkpoint_orbax.one_line(e)}", file=sys.stderr)
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
      result = ensemble.train_ensemble(config, workdir, resume_command=resume)
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
    fs_errors.WorkdirError,
  ) as e:
    # One write for the line and its newline (print() makes two): a failed save's Orbax thread may log
    # (ERROR:absl:...) at this moment, and its record must not land inside the error line.
    sys.stderr.write(f"error: {checkpoint_orbax.one_line(e)}\n")
    sys.stderr.flush()
    return checkpoint_orbax.exit_now_if_threads_linger(2)
  # Stopped by SIGTERM / SIGINT with a checkpoint saved: say so to the scheduler (requeue me).
  return preemption.EXIT_PREEMPTED if int(state.step) < config.train.steps else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
