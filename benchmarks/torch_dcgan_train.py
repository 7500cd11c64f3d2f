"""PyTorch trainer of jgan's demo DCGAN recipe: the torch side of ``benchmarks/parity_dcgan.py``.

Trains ``benchmarks/torch_dcgan.py``'s model (jgan's DCGAN layer for layer) with the PyTorch DCGAN
example's step on the digits of an ``.npz`` and writes generated samples for jgan to score. It imports
torch and numpy only, never jgan or JAX, so it runs in the reference interpreter (``.venv-ref``):

    .venv-ref/bin/python benchmarks/torch_dcgan_train.py --data digits.npz --out torch_s0.npz --seed 0

The recipe is ``configs/dcgan_mnist5k.py`` (the old ``make demo``): 28 px, one channel, latent 64,
widths 32, batch 64, 3,000 G steps, non-saturating BCE loss, Adam(2e-4, 0.5, 0.999) for G and D, one D
update per G update, G's update reusing the D update's fakes (``torch_dcgan.TrainStep``, as jgan's step
does), BatchNorm momentum 0.1 / eps 1e-5, weights N(0, 0.02).

* Data: ``--data`` holds ``x`` float32 ``[N, 28, 28, 1]`` in [-1, 1] (parity_dcgan.py exports jgan's
  mnist5k train split, 4,500 digits). The stream is a new permutation per epoch from
  ``numpy.random.default_rng(seed)``, batches of 64 taken across epoch boundaries (as jgan's shuffled,
  repeated, then batched Grain pipeline; the example's DataLoader would end each epoch on a short batch).
* EMA of G as jgan's (``jgan.optim.ema_update``): after step ``t`` (0-based) the parameters are averaged
  with decay ``min(0.999, (1 + t) / (10 + t))``; BatchNorm's running statistics are not averaged, the
  EMA generator uses the live G's (as ``jgan.state.generate(ema=True)``).
* Samples: ``--num-samples`` (5,000: what mnist_fid5k needs) from each generator, G in eval mode
  (BatchNorm's running statistics, as jgan samples), z from ``torch.Generator`` seeded ``seed``.

Threads: one by default. On the shared 2-core machine two OpenMP threads spun against the other
processes' load: 0.58-0.81 CPU s per step against 0.053 with one thread (this model, batch 64, load 22).

``--out`` gets ``live`` and ``ema``: float32 ``[N, 28, 28, 1]`` in [-1, 1] (NHWC, jgan's layout), the
parameter counts and the training wall / CPU seconds.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch_dcgan  # noqa: E402


class Batches:
  """An endless stream of ``[B, 1, S, S]`` batches of ``x`` (NHWC numpy): a permutation per epoch."""

  def __init__(self, x: np.ndarray, batch_size: int, seed: int):
    self.x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    self.batch_size, self.rng = batch_size, np.random.default_rng(seed)
    self.order = np.zeros(0, np.int64)

  def __next__(self) -> torch.Tensor:
    while self.order.size < self.batch_size:
      self.order = np.concatenate([self.order, self.rng.permutation(len(self.x))])
    idx, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
    return self.x[torch.from_numpy(idx)]


class EMA:
  """The EMA of G's parameters with jgan's warm-up (``jgan.optim.ema_decay_at``)."""

  def __init__(self, net: torch.nn.Module, decay: float):
    self.decay = decay
    self.params = [p.detach().clone() for p in net.parameters()]

  @torch.no_grad()
  def update(self, net: torch.nn.Module, t: int) -> None:
    """Averages in ``net``'s parameters after step ``t`` (0-based)."""
    d = min(self.decay, (1.0 + t) / (10.0 + t))
    for e, p in zip(self.params, net.parameters()):
      e.mul_(d).add_(p.detach(), alpha=1.0 - d)

  def generator(self, net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` (its BatchNorm running statistics included) with the averaged parameters."""
    g = copy.deepcopy(net)
    with torch.no_grad():
      for p, e in zip(g.parameters(), self.params):
        p.copy_(e)
    return g


@torch.no_grad()
def sample(g: torch.nn.Module, n: int, latent_dim: int, seed: int, batch: int = 500) -> np.ndarray:
  """``n`` images of ``g`` in eval mode, float32 NHWC in [-1, 1]; z from a generator seeded ``seed``."""
  g.eval()
  gen = torch.Generator().manual_seed(seed)
  out = []
  for start in range(0, n, batch):
    z = torch.randn(min(batch, n - start), latent_dim, generator=gen)
    out.append(g(z).permute(0, 2, 3, 1).numpy())
  return np.concatenate(out).astype(np.float32)


def train(x: np.ndarray, args) -> dict:
  """Trains on ``x`` with ``args``' recipe; returns the samples of both generators and the run's facts."""
  torch.manual_seed(args.seed)
  size, channels = x.shape[1], x.shape[3]
  step = torch_dcgan.TrainStep(size, args.batch_size, latent_dim=args.latent_dim, width=args.width, channels=channels)
  step.optG.param_groups[0].update(lr=args.lr, betas=(args.b1, args.b2))
  step.optD.param_groups[0].update(lr=args.lr, betas=(args.b1, args.b2))
  ema = EMA(step.netG, args.ema_decay)
  batches = Batches(x, args.batch_size, args.seed)
  w0, c0 = time.perf_counter(), time.process_time()
  for t in range(args.steps):
    d_loss, g_loss = step(next(batches))
    ema.update(step.netG, t)
    if args.log_every and ((t + 1) % args.log_every == 0 or t + 1 == args.steps):
      print(f"torch seed {args.seed} step {t + 1}: d_loss {d_loss.item():.4f} g_loss {g_loss.item():.4f}", flush=True)
  train_s, train_cpu_s = time.perf_counter() - w0, time.process_time() - c0
  return {
    "live": sample(step.netG, args.num_samples, args.latent_dim, args.seed),
    "ema": sample(ema.generator(step.netG), args.num_samples, args.latent_dim, args.seed),
    "g_params": torch_dcgan.param_count(step.netG),
    "d_params": torch_dcgan.param_count(step.netD),
    "train_s": train_s,
    "train_cpu_s": train_cpu_s,
    "torch_version": torch.__version__,
  }


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--data", required=True, help=".npz with x: float32 [N, S, S, C] in [-1, 1]")
  ap.add_argument("--out", required=True, help=".npz to write (live, ema samples and the run's facts)")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--steps", type=int, default=3000, help="G updates (one D update each)")
  ap.add_argument("--batch-size", type=int, default=64)
  ap.add_argument("--latent-dim", type=int, default=64)
  ap.add_argument("--width", type=int, default=32, help="G's and D's channel width (torch_dcgan)")
  ap.add_argument("--lr", type=float, default=2e-4)
  ap.add_argument("--b1", type=float, default=0.5)
  ap.add_argument("--b2", type=float, default=0.999)
  ap.add_argument("--ema-decay", type=float, default=0.999)
  ap.add_argument("--num-samples", type=int, default=5000)
  ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0: the number of cores)")
  ap.add_argument("--log-every", type=int, default=500)
  args = ap.parse_args(argv)
  torch.set_num_threads(args.threads or os.cpu_count() or 1)
  with np.load(args.data) as f:
    x = f["x"].astype(np.float32)
  out = train(x, args)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  tmp = args.out + ".tmp.npz"
  np.savez(tmp, **out)
  os.replace(tmp, args.out)  # a killed run leaves no half-written result
  return 0


if __name__ == "__main__":
  sys.exit(main())
