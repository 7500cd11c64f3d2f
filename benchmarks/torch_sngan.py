"""PyTorch reference SNGAN ResNet (Miyato et al. 2018; Mimicry's ``sngan_32``) and its hinge-loss step.

The architecture of CIFAR-10's SNGAN as Mimicry (kwotsin/mimicry, ``torch_mimicry/nets/sngan/sngan_32``)
builds it, with the widths as arguments (published: ``g_width=256``, ``d_width=128``, ``latent_dim=128``,
bottom width 4):

* G: ``Linear(z, 4*4*g_width)`` -> 3 up-sampling residual blocks (BN, ReLU, nearest x2, conv3x3, BN, ReLU,
  conv3x3; shortcut nearest x2 + conv1x1) -> BN, ReLU, conv3x3 to RGB, tanh.
* D: optimised first block (conv3x3, ReLU, conv3x3, avg-pool; shortcut avg-pool + conv1x1), a down-sampling
  block (shortcut conv1x1 + avg-pool), two plain blocks (identity shortcut), ReLU, sum over space, linear;
  spectral norm on every layer of D.

``benchmarks/bench_layers.py`` asserts the parameter counts equal jgan's ``resnet`` model at the same
widths. The step: one D update on the hinge loss (real batch, ``fake.detach()``), one G update (its own
fresh fakes), Adam(2e-4, betas (0, 0.9)), as the published recipe with n_critic = 1 (the benchmark times
one D and one G update per step on every side).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _sn(m: nn.Module, sn: bool) -> nn.Module:
  return spectral_norm(m) if sn else m


class GBlock(nn.Module):
  def __init__(self, cin: int, cout: int):
    super().__init__()
    self.b1, self.b2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
    self.c1, self.c2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
    self.c_sc = nn.Conv2d(cin, cout, 1, 1, 0)  # learnable shortcut: the block up-samples

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    h = F.interpolate(F.relu(self.b1(x)), scale_factor=2, mode="nearest")
    h = self.c2(F.relu(self.b2(self.c1(h))))
    return h + self.c_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
  def __init__(self, cin: int, cout: int, downsample: bool, optimized: bool = False):
    super().__init__()
    self.c1 = _sn(nn.Conv2d(cin, cout, 3, 1, 1), True)
    self.c2 = _sn(nn.Conv2d(cout, cout, 3, 1, 1), True)
    self.downsample, self.optimized = downsample, optimized
    self.learnable_sc = cin != cout or downsample
    if self.learnable_sc:
      self.c_sc = _sn(nn.Conv2d(cin, cout, 1, 1, 0), True)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    h = x if self.optimized else F.relu(x)
    h = self.c2(F.relu(self.c1(h)))
    if self.downsample:
      h = F.avg_pool2d(h, 2)
    sc = x
    if self.learnable_sc:
      if self.optimized:
        sc = self.c_sc(F.avg_pool2d(x, 2))
      else:
        sc = self.c_sc(x)
        sc = F.avg_pool2d(sc, 2) if self.downsample else sc
    return h + sc


class Generator(nn.Module):
  def __init__(self, latent_dim: int = 128, g_width: int = 256, bottom: int = 4, n_up: int = 3):
    super().__init__()
    self.g_width, self.bottom = g_width, bottom
    self.l1 = nn.Linear(latent_dim, bottom * bottom * g_width)
    self.blocks = nn.Sequential(*[GBlock(g_width, g_width) for _ in range(n_up)])
    self.b5 = nn.BatchNorm2d(g_width)
    self.c5 = nn.Conv2d(g_width, 3, 3, 1, 1)

  def forward(self, z: torch.Tensor) -> torch.Tensor:
    h = self.l1(z).view(z.shape[0], self.g_width, self.bottom, self.bottom)
    return torch.tanh(self.c5(F.relu(self.b5(self.blocks(h)))))


class Discriminator(nn.Module):
  def __init__(self, d_width: int = 128):
    super().__init__()
    self.blocks = nn.Sequential(
      DBlock(3, d_width, downsample=True, optimized=True),
      DBlock(d_width, d_width, downsample=True),
      DBlock(d_width, d_width, downsample=False),
      DBlock(d_width, d_width, downsample=False),
    )
    self.l5 = _sn(nn.Linear(d_width, 1), True)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    h = F.relu(self.blocks(x)).sum(dim=(2, 3))
    return self.l5(h).view(-1)


def param_count(m: nn.Module) -> int:
  """Trainable parameters (BatchNorm statistics and spectral-norm vectors are buffers, not counted)."""
  return sum(p.numel() for p in m.parameters())


class TrainStep:
  """One D and one G hinge-loss update, callable as ``step(real [B, 3, S, S]) -> (d_loss, g_loss)``."""

  def __init__(
    self, image_size: int, batch_size: int, device: str = "cpu", latent_dim: int = 128, g_width: int = 256, d_width=128
  ):
    if image_size != 32:
      raise ValueError(f"torch_sngan implements the 32 px SNGAN; got image_size={image_size}")
    self.device = torch.device(device)
    self.netG = Generator(latent_dim, g_width).to(self.device)
    self.netD = Discriminator(d_width).to(self.device)
    self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.0, 0.9))
    self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.0, 0.9))
    self.noise = torch.empty(batch_size, latent_dim, device=self.device)

  def __call__(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    self.netD.zero_grad(set_to_none=True)
    fake = self.netG(self.noise.normal_())
    d_loss = F.relu(1.0 - self.netD(real)).mean() + F.relu(1.0 + self.netD(fake.detach())).mean()
    d_loss.backward()
    self.optD.step()
    self.netG.zero_grad(set_to_none=True)
    g_loss = -self.netD(self.netG(self.noise.normal_())).mean()
    g_loss.backward()
    self.optG.step()
    return d_loss, g_loss

  def sync(self) -> None:
    if self.device.type == "cuda":
      torch.cuda.synchronize(self.device)
