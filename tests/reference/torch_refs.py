"""Runs the reference packages themselves (pytorch-fid, clean-fid) on inputs written by
tests/test_metrics_references.py, in the reference environment (`make reference-env`: PyTorch,
torchvision, pytorch-fid, clean-fid), and writes their outputs for the test to compare with jgan's.

    .venv-ref/bin/python tests/reference/torch_refs.py --weights W.pth --images IN.npz --out OUT.npz

IN.npz holds uint8 image sets ``[N, H, W, C]`` (any names); OUT.npz gets, for each set ``s``:
``features_s`` (pytorch-fid's pool3, float64 [N, 2048]) and ``clean_resized_s`` (clean-fid's PIL
bicubic resize to 299, float32 [N, 299, 299, C] in [0, 255]); and for the first two sets, ``fid``
(pytorch-fid's calculate_frechet_distance on their statistics) and ``kid`` (clean-fid's
kernel_distance, one subset covering both whole sets so it is deterministic).
This file never imports jgan: it is the independent side.
"""

import argparse

import numpy as np
import torch


def pytorch_fid_model(weights_path: str):
  """pytorch-fid's InceptionV3 (pool3 block, resize_input and normalize_input as in fid_score.py),
  with the weights of ``weights_path`` instead of the release file (no download here)."""
  import pytorch_fid.inception as pfi

  pfi.load_state_dict_from_url = lambda *args, **kwargs: torch.load(weights_path, map_location="cpu")
  model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
  return model.eval()


def features(model, images_u8: np.ndarray, batch_size: int = 8) -> np.ndarray:
  # fid_score.py's input: float [0, 1] NCHW (ToTensor), grayscale repeated to 3 channels.
  x = torch.from_numpy(images_u8.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  out = []
  with torch.no_grad():
    for i in range(0, len(x), batch_size):
      out.append(model(x[i : i + batch_size])[0].squeeze(-1).squeeze(-1).double().numpy())
  return np.concatenate(out)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--weights", required=True)
  p.add_argument("--images", required=True)
  p.add_argument("--out", required=True)
  args = p.parse_args()
  torch.set_num_threads(2)
  torch.backends.mkldnn.enabled = False  # plain float32 convolutions, as the JAX side computes them
  from cleanfid.fid import kernel_distance
  from cleanfid.resize import make_resizer
  from pytorch_fid.fid_score import calculate_frechet_distance

  model = pytorch_fid_model(args.weights)
  resizer = make_resizer("PIL", False, "bicubic", (299, 299))  # clean-fid's mode="clean"
  sets = dict(np.load(args.images))
  out = {}
  for name, images in sets.items():
    out[f"features_{name}"] = features(model, images)
    # clean-fid reads images as RGB: grayscale ones are repeated to 3 channels first.
    out[f"clean_resized_{name}"] = np.stack([resizer(np.repeat(im, 3 // im.shape[2], axis=2)) for im in images])
  a, b = [out[f"features_{n}"] for n in list(sets)[:2]]
  stats = [(f.mean(axis=0), np.cov(f, rowvar=False)) for f in (a, b)]
  out["fid"] = np.float64(calculate_frechet_distance(*stats[0], *stats[1]))
  m = min(len(a), len(b))
  out["kid"] = np.float64(kernel_distance(a, b, num_subsets=1, max_subset_size=m))
  np.savez(args.out, **out)


if __name__ == "__main__":
  main()
