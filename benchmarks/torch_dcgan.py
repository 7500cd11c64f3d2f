"""PyTorch reference DCGAN with exactly jgan's DCGAN architecture, and the PyTorch-example train step.

Used by ``benchmarks/bench_dcgan.py`` and ``bench_layers.py`` as the speed reference and by
``benchmarks/torch_dcgan_train.py`` (the trainer of ``parity_dcgan.py``'s torch side); not part of the jgan
package. PyTorch is the optional ``bench`` dependency (``pip install -e '.[bench]'``).

The networks mirror :mod:`jgan.models.dcgan` layer for layer (so both sides count the same parameters):

* G: ``Linear(latent, s0*s0*c0, bias=False)`` -> ``[B, c0, s0, s0]`` -> BatchNorm + ReLU, then per
  up-sampling ``ConvTranspose2d(4, stride 2, padding 1)`` (no bias except the last) -> BatchNorm + ReLU,
  and tanh on the output.
* D: ``Conv2d(4, stride 2, padding 1)`` per down-sampling, bias only on the first (it has no norm),
  BatchNorm + LeakyReLU(0.2) after the others, and a final ``Conv2d`` over the whole ``s0 x s0`` map
  (with bias, as ``nnx.Conv``'s default) giving one logit per image.

BatchNorm: eps 1e-5, momentum 0.1 (= flax momentum 0.9). Weights N(0, 0.02), BN scales N(1, 0.02).
PyTorch works in NCHW (the example's layout), jgan in NHWC; the maths is the same.

The train step is the PyTorch DCGAN example's (github.com/pytorch/examples, dcgan/main.py): D on a real
batch, D on ``fake.detach()``, one D Adam step; then G's loss on ``D(fake)`` reusing the same ``fake``
(non-saturating BCE), one G Adam step. Adam lr 2e-4, betas (0.5, 0.999).
"""

from __future__ import annotations

import torch
from torch import nn

SUPPORTED_SIZES = {28: 7, 32: 4, 64: 4}  # image size -> side of G's first map (as jgan.models.dcgan)


def _n_up(image_size: int) -> int:
  s, n = SUPPORTED_SIZES[image_size], 0
  while s < image_size:
    s, n = s * 2, n + 1
  return n


def _init(m: nn.Module) -> None:
  if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
    nn.init.normal_(m.weight, 0.0, 0.02)
    if m.bias is not None:
      nn.init.zeros_(m.bias)
  elif isinstance(m, nn.BatchNorm2d):
    nn.init.normal_(m.weight, 1.0, 0.02)
    nn.init.zeros_(m.bias)


class Generator(nn.Module):
  """z [B, latent] float32 -> images [B, channels, S, S] in (-1, 1)."""

  def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, width: int = 64):
    super().__init__()
    n_up = _n_up(image_size)
    self.s0 = SUPPORTED_SIZES[image_size]
    self.c0 = width * 2 ** (n_up - 1)
    self.project = nn.Linear(latent_dim, self.s0 * self.s0 * self.c0, bias=False)
    layers: list[nn.Module] = [nn.BatchNorm2d(self.c0, eps=1e-5, momentum=0.1), nn.ReLU(True)]
    c = self.c0
    for i in range(n_up):
      last = i == n_up - 1
      cout = channels if last else c // 2
      layers.append(nn.ConvTranspose2d(c, cout, 4, 2, 1, bias=last))
      layers += [nn.Tanh()] if last else [nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU(True)]
      c = cout
    self.main = nn.Sequential(*layers)
    self.apply(_init)

  def forward(self, z: torch.Tensor) -> torch.Tensor:
    return self.main(self.project(z).view(z.shape[0], self.c0, self.s0, self.s0))


class Discriminator(nn.Module):
  """images [B, channels, S, S] -> logits [B]."""

  def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64):
    super().__init__()
    n_down = _n_up(image_size)
    s_final = SUPPORTED_SIZES[image_size]
    layers: list[nn.Module] = []
    c = channels
    for i in range(n_down):
      cout = width * 2**i
      first = i == 0
      layers.append(nn.Conv2d(c, cout, 4, 2, 1, bias=first))
      if not first:
        layers.append(nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))
      layers.append(nn.LeakyReLU(0.2, inplace=True))
      c = cout
    layers.append(nn.Conv2d(c, 1, s_final, 1, 0, bias=True))
    self.main = nn.Sequential(*layers)
    self.apply(_init)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.main(x).view(-1)


def param_count(m: nn.Module) -> int:
  """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
  return sum(p.numel() for p in m.parameters())


class TrainStep:
  """The PyTorch DCGAN example's training iteration, callable as ``step(real [B, C, S, S]) -> losses``.

  Noise and the real/fake label tensors are preallocated on ``device``; ``step`` returns the two loss
  tensors without a host sync (``sync()`` waits for an accelerator).
  """

  def __init__(
    self,
    image_size: int,
    batch_size: int,
    device: str = "cpu",
    latent_dim: int = 100,
    width: int = 64,
    channels: int = 3,
    channels_last: bool = False,
  ):
    self.device = torch.device(device)
    self.netG = Generator(image_size, channels, latent_dim, width).to(self.device)
    self.netD = Discriminator(image_size, channels, width).to(self.device)
    self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
      self.netG = self.netG.to(memory_format=torch.channels_last)
      self.netD = self.netD.to(memory_format=torch.channels_last)
    self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    self.criterion = nn.BCEWithLogitsLoss()  # D outputs logits; BCE on sigmoid, numerically safe
    self.ones = torch.ones(batch_size, device=self.device)
    self.zeros = torch.zeros(batch_size, device=self.device)
    self.noise = torch.empty(batch_size, latent_dim, device=self.device)
    self.batch_size = batch_size

  def __call__(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    real = real.contiguous(memory_format=self.memory_format)
    netG, netD, crit = self.netG, self.netD, self.criterion
    # (1) D: maximise log D(x) + log(1 - D(G(z))).
    netD.zero_grad(set_to_none=True)
    err_real = crit(netD(real), self.ones)
    err_real.backward()
    fake = netG(self.noise.normal_())
    err_fake = crit(netD(fake.detach()), self.zeros)
    err_fake.backward()
    self.optD.step()
    # (2) G: maximise log D(G(z)) (non-saturating), reusing fake.
    netG.zero_grad(set_to_none=True)
    err_g = crit(netD(fake), self.ones)
    err_g.backward()
    self.optG.step()
    return err_real + err_fake, err_g

  def sync(self) -> None:
    if self.device.type == "cuda":
      torch.cuda.synchronize(self.device)
