"""Multi-process (multi-host) runs on ``jax.distributed``: joining, logging, config agreement.

One jgan run may span several processes, typically one per host (GPU node or TPU VM), each driving its
local devices. :func:`initialize` joins them into one JAX system before anything touches a device;
afterwards ``jax.devices()`` lists every process's devices, the ``('data',)`` mesh of
:mod:`jgan.sharding` spans them all, each process loads its share of every batch and the jitted step
sees one global batch. Only process 0 writes logs, sample grids and TensorBoard; every process takes
part in every computation on the mesh and in checkpointing (Orbax coordinates the writers).

Bounded waits. JAX's client *aborts the process* (a C++ fatal error mentioning ``DEADLINE_EXCEEDED``,
not a Python exception) when the rendezvous does not complete within its ``initialization_timeout``.
So :func:`initialize` checks what it can first, and raises :class:`DistributedError` with the reason:

* a process other than 0 waits up to ``timeout_s`` for the coordinator's port to accept connections;
* process 0 checks that the coordinator port is free;
* a watchdog covers the rest of the rendezvous (e.g. a process that never starts): at ``timeout_s`` it
  prints one ``error:`` line naming the address, process id and count, and exits with status 2 before
  JAX's own (later) deadline aborts the process.

Processes that disagree on the config would compute different programs and hang in a collective or
silently train different models, so :func:`check_same_config` compares a hash of every process's
resolved config and raises ValueError naming the processes and fields that differ.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import socket
import sys
import threading
import time
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)  # (`log` is initialize's flag)

EXIT_CODE = 2  # status of a process the watchdog ends (launch.py's status for errors)
GRACE_S = 30  # JAX's own deadline is this much later than ours, so our message comes first
# Config fields each process may set for itself: where it finds its copy of the data.
PER_PROCESS_FIELDS = ("data.data_dir",)
# Environment variables that tell ``--distributed`` which cluster it runs on (jax's auto-detection).
CLUSTER_HINTS = {
  "SLURM": "SLURM_JOB_ID",
  "Open MPI": "OMPI_COMM_WORLD_SIZE",
  "TPU pod": "TPU_WORKER_HOSTNAMES",
  "Kubernetes": "KUBERNETES_SERVICE_HOST",
}


class DistributedError(RuntimeError):
  """The processes could not be joined (unreachable coordinator, port in use, bad arguments)."""


class DistributedInfo(NamedTuple):
  """Where this process stands in the run (what :func:`initialize` returns)."""

  process_index: int
  process_count: int
  local_devices: tuple[str, ...]
  global_device_count: int
  coordinator_address: str  # "" for a single process

  def describe(self) -> str:
    """One line for the log, e.g. ``process 1 of 2: 2 local devices (...) of 4 global; coordinator ...``."""
    where = f"; coordinator {self.coordinator_address}" if self.coordinator_address else ""
    return (
      f"process {self.process_index} of {self.process_count}: {len(self.local_devices)} local device(s) "
      f"({', '.join(self.local_devices)}) of {self.global_device_count} global{where}"
    )


def _split_address(address: str) -> tuple[str, int]:
  host, sep, port = address.rpartition(":")
  if not sep or not host or not port.isdigit():
    raise DistributedError(f"coordinator address {address!r} is not HOST:PORT (e.g. 10.0.0.1:8476)")
  return host.strip("[]"), int(port)


def wait_for_coordinator(address: str, timeout_s: float) -> float:
  """Waits until ``address`` (HOST:PORT) accepts TCP connections; returns the seconds waited.

  Raises:
    DistributedError: not reachable within ``timeout_s`` (with the last connection error).
  """
  host, port = _split_address(address)
  t0 = time.monotonic()
  last = None
  while True:
    try:
      with socket.create_connection((host, port), timeout=min(2.0, max(timeout_s, 0.1))):
        return time.monotonic() - t0
    except OSError as e:
      last = e
    if time.monotonic() - t0 >= timeout_s:
      raise DistributedError(
        f"the JAX coordinator at {address} is unreachable after {timeout_s:g} s ({type(last).__name__}: "
        f"{last}); start process 0 (which hosts it) with the same --coordinator_address, check the host "
        f"name and that the port is open between the hosts"
      )
    time.sleep(0.25)


def check_port_free(address: str) -> None:
  """Raises DistributedError if process 0 cannot bind the coordinator's port (another run uses it)."""
  _, port = _split_address(address)
  for family, host in ((socket.AF_INET6, "::"), (socket.AF_INET, "")):  # JAX binds [::]:PORT
    try:
      s = socket.socket(family, socket.SOCK_STREAM)
    except OSError:  # no IPv6 on this host
      continue
    try:
      s.bind((host, port))
      return
    except OSError as e:
      if e.errno == errno.EADDRINUSE:
        raise DistributedError(
          f"process 0 cannot host the JAX coordinator on port {port}: {e.strerror}; "
          f"another run may be using it, pick another port"
        ) from None
    finally:
      s.close()


def _watchdog(timeout_s: float, what: str) -> threading.Timer:
  """A timer that prints ``error: <what>`` and ends the process at ``timeout_s`` unless cancelled.

  The main thread is then blocked inside JAX's C++ client (which released the GIL), so raising there is
  impossible; exiting beats the client's later abort with a clear message.
  """

  def fire():
    sys.stderr.write(f"error: {what}\n")
    sys.stderr.flush()
    os._exit(EXIT_CODE)

  timer = threading.Timer(timeout_s, fire)
  timer.daemon = True
  timer.start()
  return timer


def detected_clusters() -> list[str]:
  """Cluster environments ``jax.distributed.initialize()`` would auto-detect here (may be empty)."""
  try:  # jax's own detectors (private module; fall back to environment variables)
    from jax._src.clusters import ClusterEnv

    return [c.__name__ for c in ClusterEnv._cluster_types if not c.opt_in_only_method and c.is_env_present()]
  except Exception:  # noqa: BLE001
    return [name for name, var in CLUSTER_HINTS.items() if var in os.environ]


def _detect(coordinator_address, num_processes, process_id, timeout_s):
  """Fills unset values from the cluster as ``jax.distributed.initialize`` would (to check them first).

  Returns ``(address, count, id, local_device_ids)``; values stay None if JAX's private detector changed.
  """
  try:
    from jax._src.clusters import ClusterEnv

    return ClusterEnv.auto_detect_unset_distributed_params(
      coordinator_address, num_processes, process_id, None, None, int(timeout_s)
    )
  except (ImportError, AttributeError, TypeError):
    return coordinator_address, num_processes, process_id, None


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  *,
  auto: bool = False,
  timeout_s: float = 300,
  log: bool = True,
) -> DistributedInfo:
  """Joins this process to a multi-process JAX run; call before any JAX computation.

  Args:
    coordinator_address: ``HOST:PORT`` of process 0, the same on every process.
    num_processes, process_id: the run's process count and this process's id in ``0..num_processes-1``.
    auto: let JAX detect unset values from the cluster (SLURM, Open MPI, Cloud TPU pods, Kubernetes /
      GKE); without ``auto`` all three must be given.
    timeout_s: bound on the whole rendezvous (module docstring); failures within it raise
      DistributedError, a rendezvous still incomplete at the bound ends the process with an ``error:``.
    log: print :meth:`DistributedInfo.describe` to stderr.

  Returns:
    This process's :class:`DistributedInfo`.

  Raises:
    DistributedError: missing arguments, nothing to auto-detect, unreachable coordinator, port in use.
    RuntimeError: JAX's backends were already initialised (a computation ran before this call).
  """
  import jax

  from jgan.cpu_safety import backends_initialised

  given = {"--coordinator_address": coordinator_address, "--num_processes": num_processes, "--process_id": process_id}
  missing = [k for k, v in given.items() if v is None]
  if missing and not auto:
    raise DistributedError(
      f"multi-process runs need {', '.join(given)} (missing: {', '.join(missing)}), or "
      f"--distributed to detect them from a SLURM / Open MPI / TPU pod / Kubernetes job"
    )
  if auto and missing and not detected_clusters():
    raise DistributedError(
      f"--distributed found no cluster environment to detect {', '.join(missing)} from "
      f"(looked for SLURM, Open MPI, Cloud TPU, Kubernetes); pass them as flags"
    )
  if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
    raise DistributedError(
      f"--process_id={process_id} must be in 0..{num_processes - 1} (--num_processes={num_processes})"
    )
  if backends_initialised():
    raise RuntimeError(
      "jgan.multihost.initialize must run before any JAX computation (JAX's backends "
      "are already initialised); call it first thing in the program"
    )
  t0 = time.monotonic()
  local_device_ids = None
  if auto and missing:
    coordinator_address, num_processes, process_id, local_device_ids = _detect(
      coordinator_address, num_processes, process_id, timeout_s
    )
  if coordinator_address is not None and process_id is not None:
    if process_id == 0:
      check_port_free(coordinator_address)
    else:
      wait_for_coordinator(coordinator_address, timeout_s)
  remaining = max(1.0, timeout_s - (time.monotonic() - t0))
  who = (
    f"process {'?' if process_id is None else process_id} of {'?' if num_processes is None else num_processes}"
    f" (coordinator {coordinator_address or '?'})"
  )
  timer = _watchdog(
    remaining,
    f"{who} could not join the other processes within {timeout_s:g} s: start "
    f"all of them (same --coordinator_address and --num_processes, distinct "
    f"--process_id) and check that their hosts reach each other",
  )
  try:
    try:
      jax.distributed.initialize(
        coordinator_address,
        num_processes,
        process_id,
        local_device_ids,
        initialization_timeout=int(remaining) + GRACE_S,
      )
    except ValueError as e:  # what auto-detection could not fill in
      raise DistributedError(f"jax.distributed.initialize: {e}") from None
    out = info()  # initialises the backend: the processes exchange their device lists here
  finally:
    timer.cancel()
  if log:
    logger.info(f"jax.distributed: {out.describe()}")
  return out


def info() -> DistributedInfo:
  """This process's :class:`DistributedInfo` (also for single-process runs; initialises JAX's backend)."""
  import jax

  try:
    from jax._src.distributed import global_state  # private; only for the log line

    coordinator = global_state.coordinator_address or ""
  except (ImportError, AttributeError):
    coordinator = ""
  return DistributedInfo(
    jax.process_index(),
    jax.process_count(),
    tuple(str(d) for d in jax.local_devices()),
    jax.device_count(),
    coordinator if jax.process_count() > 1 else "",
  )


def _comparable(config, workdir: str | None) -> dict:
  """The resolved config as flat ``{dotted key: JSON value}`` without PER_PROCESS_FIELDS, plus the
  absolute workdir."""
  from jgan import config as config_lib
  from jgan import storage

  d = json.loads(config.to_json_best_effort()) if hasattr(config, "to_json_best_effort") else dict(config)
  d = {k: v for k, v in config_lib.flatten(d).items() if k not in PER_PROCESS_FIELDS}
  if workdir is not None:
    d["workdir"] = storage.abspath(workdir)  # checkpoints need one directory that every process sees
  return d


def _allgather_text(text: str) -> list[str]:
  """Every process's ``text`` (a collective: all processes must call it)."""
  from jax.experimental import multihost_utils

  raw = np.frombuffer(text.encode(), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(np.int32(raw.size)))
  padded = np.zeros(int(sizes.max()), np.uint8)
  padded[: raw.size] = raw
  rows = np.asarray(multihost_utils.process_allgather(padded))
  return [bytes(r[:n]).decode() for r, n in zip(rows, sizes)]


def check_same_config(config, workdir: str | None = None) -> None:
  """Raises ValueError on every process if the processes' configs (or workdirs) differ.

  Each process hashes its resolved config (minus PER_PROCESS_FIELDS) and absolute ``workdir``; the
  hashes are gathered (one small collective). Only on a mismatch are the configs themselves gathered,
  to name the differing fields. A no-op with one process. All processes must call it.
  """
  import jax
  from jax.experimental import multihost_utils

  if jax.process_count() == 1:
    return
  text = json.dumps(_comparable(config, workdir), sort_keys=True)
  digest = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.int32)  # int32 [8]: no x64 needed
  digests = np.asarray(multihost_utils.process_allgather(digest))  # [process_count, 8]
  differing = [p for p in range(len(digests)) if not np.array_equal(digests[p], digests[0])]
  if not differing:
    return
  from jgan.resume import config_diff

  configs = [json.loads(t) for t in _allgather_text(text)]
  parts = [f"process {p}: {'; '.join(config_diff(configs[0], configs[p], harmless=()))}" for p in differing]
  raise ValueError(
    f"the {len(digests)} processes disagree on the config (fields as process 0 -> process p): "
    f"{' | '.join(parts)}; launch every process with the same --config and --config.* flags"
  )


def any_signal(name: str | None) -> str | None:
  """Agrees on a stop request: the lowest-numbered process's signal name, or None if none got one.

  ``name`` is this process's signal (``"SIGTERM"``) or None. A collective: all processes must call it at
  the same point of the program. Another process's signal comes back as ``"SIGTERM (process 1)"``.
  """
  import signal

  import jax
  from jax.experimental import multihost_utils

  code = np.int32(signal.Signals[name].value if name else 0)
  codes = np.asarray(multihost_utils.process_allgather(code))
  hit = np.flatnonzero(codes)
  if not hit.size:
    return None
  p = int(hit[0])
  theirs = signal.Signals(int(codes[p])).name
  return theirs if p == jax.process_index() else f"{theirs} (process {p})"


# Flags launch.py accepts before handing the rest of argv to the config parser.
FLAGS = {"--coordinator_address": str, "--num_processes": int, "--process_id": int, "--distributed_timeout": float}
BOOL_FLAGS = ("--distributed",)
LOWEST = {"--num_processes": 1, "--process_id": 0, "--distributed_timeout": 1e-3}  # numeric flags' valid range


def pop_flags(argv: list[str]) -> tuple[dict | None, list[str]]:
  """Splits launch.py's distributed flags off ``argv``.

  Returns ``(kwargs for initialize(), or None if no distributed flag was given; the other arguments)``.
  Accepts ``--flag=value`` and ``--flag value``; raises ValueError (one line) for a malformed value.
  """
  kwargs, rest, i = {}, [], 0
  names = {f: f[2:] for f in FLAGS} | {"--distributed_timeout": "timeout_s", "--distributed": "auto"}
  while i < len(argv):
    a = argv[i]
    name, eq, value = a.partition("=")
    if name in BOOL_FLAGS and not eq:
      kwargs[names[name]] = True
    elif name in FLAGS:
      if not eq:
        if i + 1 >= len(argv):
          raise ValueError(f"flag {name} needs a value")
        i, value = i + 1, argv[i + 1]
      try:
        kwargs[names[name]] = FLAGS[name](value)
      except ValueError:
        raise ValueError(f"bad value in {name}={value}: expected {FLAGS[name].__name__}") from None
      if name in LOWEST and not (math.isfinite(kwargs[names[name]]) and kwargs[names[name]] >= LOWEST[name]):
        raise ValueError(
          f"bad value in {name}={value}: must be {'> 0' if name == '--distributed_timeout' else f'>= {LOWEST[name]}'}"
        )
    else:
      rest.append(a)
    i += 1
  if not kwargs or set(kwargs) == {"timeout_s"}:
    return None, rest
  return kwargs, rest
