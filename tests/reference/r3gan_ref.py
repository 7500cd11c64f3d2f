"""R3GAN's own PyTorch networks on weights and inputs jgan wrote (tests/test_models_r3gan.py).

Run in the reference environment: ``python r3gan_ref.py R3GAN_SOURCE IN.npz OUT.npz``. ``R3GAN_SOURCE`` is
a checkout of github.com/brownvc/R3GAN; its G and D (``training/networks.py``) are built with the widths,
groups and blocks in ``IN.npz``, every parameter is replaced by the array stored under its state-dict
name (``w:<name>``; every name must be covered), and ``OUT.npz`` gets ``x = G(z, y)`` (NCHW) and
``d_of_x = D(x, y)``. On CPU the reference's fused ops run their reference paths (``bias_act``,
``upfirdn2d``).
"""

import sys
import types

import numpy as np
import torch


def main(source: str, inp: str, out: str) -> None:
  sys.path.insert(0, source)
  # conv2d_gradfix imports pkg_resources (setuptools), absent from this environment; only parse_version.
  parse = lambda s: tuple(int(p) for p in s.split("+")[0].split(".")[:3] if p.isdigit())
  sys.modules.setdefault("pkg_resources", types.SimpleNamespace(parse_version=parse))
  import training.networks as networks  # noqa: E402  (the reference's wrappers)

  a = np.load(inp)
  widths, groups, blocks = [list(map(int, a[k])) for k in ("widths", "groups", "blocks")]
  classes, z_dim = int(a["classes"]), a["z"].shape[1]
  g_kw = dict(NoiseDimension=z_dim, WidthPerStage=widths, CardinalityPerStage=groups, BlocksPerStage=blocks)
  d_kw = dict(WidthPerStage=widths[::-1], CardinalityPerStage=groups[::-1], BlocksPerStage=blocks[::-1])
  common = dict(ExpansionFactor=2, FP16Stages=[], c_dim=classes, img_resolution=0)
  if classes:
    g_kw["ConditionEmbeddingDimension"], d_kw["ConditionEmbeddingDimension"] = z_dim, widths[0]
  nets = {"G": networks.Generator(**g_kw, **common), "D": networks.Discriminator(**d_kw, **common)}
  given = {k[2:]: v for k, v in a.items() if k.startswith("w:")}
  for who, net in nets.items():
    state = net.state_dict()
    names = [n for n in state if not n.endswith("Resampler.Kernel")]
    missing = sorted(set(names) - {k[len(who) + 1 :] for k in given if k.startswith(who + ".")})
    if missing:
      raise SystemExit(f"no weights given for {who}'s {missing}")
    for n in names:
      w = torch.from_numpy(np.ascontiguousarray(given[f"{who}.{n}"]))
      if tuple(w.shape) != tuple(state[n].shape):
        raise SystemExit(f"{who}.{n}: shape {tuple(w.shape)} given, {tuple(state[n].shape)} expected")
      state[n] = w
    net.load_state_dict(state)
  c = torch.nn.functional.one_hot(torch.from_numpy(a["y"]).long(), classes).float() if classes else None
  with torch.no_grad():
    x = nets["G"](torch.from_numpy(a["z"]), c)
    s = nets["D"](x, c)
  np.savez(out, x=x.numpy(), d_of_x=s.numpy())


if __name__ == "__main__":
  main(*sys.argv[1:4])
