"""Variational divergence estimation: the reason f-GAN exists, as a measurement.

For an f-divergence, any critic ``T`` gives the lower bound (Nguyen, Wainwright & Jordan 2010;
Nowozin et al. 2016, eq. 4)

    D_f(P || Q) >= E_P[T(x)] - E_Q[f*(T(x))] = -d_loss(T),

tight at ``T* = f'(p/q)``. For the Wasserstein-1 distance, the Kantorovich-Rubinstein dual gives
``W1(P, Q) = sup_{Lip(D) <= 1} E_P[D] - E_Q[D]``. :func:`estimate_divergence` trains a small MLP
critic on fresh samples of P and Q with the registered objective's D loss (plus its ``d_penalty``,
WGAN-GP's gradient penalty) and reports ``-d_loss`` on a large fresh sample. The whole training run is
one ``jax.lax.scan`` inside one ``jit``: a few thousand steps take seconds on a CPU.

The reference values come from :func:`f_divergence_by_quadrature` (``scipy.integrate.quad`` of
``q f(p/q)`` with the numpy ``f`` of :data:`jgan.objectives.F_DIVERGENCES`) and, for W1,
``scipy.stats.wasserstein_distance`` on samples. ``benchmarks/divergence_table.py`` writes the table in
``docs/divergence_estimates.md``; ``tests/test_labs_divergence.py`` checks it.

The estimate's variance is infinite for some pairs (e.g. Neyman's chi-square when Q is much wider than
P): :mod:`jgan.labs.divergence_validity` states where each estimator is valid, and
:func:`estimate_divergences` warns (:class:`EstimatorVarianceWarning`) for such Gaussians.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import integrate, stats

from jgan.labs import divergence_validity
from jgan.objectives import F_DIVERGENCES, make_objective

Array = jax.Array
Sampler = Callable[[Array, int], Array]  # (key, n) -> float32 [n, d]

ESTIMABLE = (*F_DIVERGENCES, "wgan_gp")


class EstimatorVarianceWarning(UserWarning):
  """The optimal critic's estimate of a divergence has infinite variance for the given P and Q."""


def gaussian_sampler(loc: float, scale: float) -> Sampler:
  """``(key, n) -> [n, 1]`` float32 draws from the 1-D normal ``N(loc, scale^2)``.

  The sampler carries ``.gaussian = (loc, scale)``, so :func:`estimate_divergences` can check that the
  estimator's variance is finite for the pair (:mod:`jgan.labs.divergence_validity`).
  """

  def sample(key, n):
    return loc + scale * jax.random.normal(key, (n, 1), jnp.float32)

  sample.gaussian = (float(loc), float(scale))  # type: ignore[attr-defined]
  return sample


def check_variance(task: Task) -> str | None:
  """Warns (EstimatorVarianceWarning) and returns the reason if ``task``'s estimator has infinite variance.

  Decided for 1-D Gaussian samplers (:func:`gaussian_sampler`) in closed form; other samplers are not
  checked (None). See :mod:`jgan.labs.divergence_validity` for the conditions.
  """
  gp, gq = getattr(task.sample_p, "gaussian", None), getattr(task.sample_q, "gaussian", None)
  if gp is None or gq is None:
    return None
  case = GaussianCase(*gp, *gq)
  why = divergence_validity.variance_condition(task.name, case)
  if why is not None:
    warnings.warn(
      f"{task.name} between P = N({gp[0]:g}, {gp[1]:g}^2) and Q = N({gq[0]:g}, {gq[1]:g}^2): the estimator's "
      f"variance is infinite: {why}. Estimates will scatter widely whatever the training "
      f"(docs/divergence_estimates.md, 'Where the estimators are valid')",
      EstimatorVarianceWarning,
      stacklevel=3,
    )
  return why


def _init_mlp(key: Array, in_dim: int, hidden: int) -> list[tuple[Array, Array]]:
  """Weights of ``in_dim -> hidden -> hidden -> 1``: He-initialised hidden layers, a zero output layer.

  The zero output layer makes the initial critic constant. A random one can start with the wrong sign
  of slope, and in 1-D WGAN-GP's two-sided penalty then traps it: turning ``D(x) = a x`` from
  ``a > 0`` to ``a < 0`` must pass ``a = 0`` where the penalty is ``gp_weight``, so
  ``a = 1 - 1/(2 gp_weight)`` is a local minimum (in more dimensions the gradient can rotate instead).
  """
  dims = (in_dim, hidden, hidden)
  keys = jax.random.split(key, len(dims) - 1)
  layers = [
    (jax.random.normal(k, (m, n), jnp.float32) * math.sqrt(2.0 / m), jnp.zeros((n,), jnp.float32))
    for k, m, n in zip(keys, dims[:-1], dims[1:])
  ]
  return layers + [(jnp.zeros((hidden, 1), jnp.float32), jnp.zeros((1,), jnp.float32))]


def mlp_critic(params, x: Array) -> Array:
  """The critic: a 2-hidden-layer softplus MLP, float32 ``[B, d] -> [B]`` raw outputs ``V(x)``.

  Softplus (not tanh) hidden units extrapolate linearly, which the unbounded optimal critics of KL,
  Pearson or Jeffrey need in the tails.
  """
  h = x
  for w, b in params[:-1]:
    h = jax.nn.softplus(h @ w + b[None])
  w, b = params[-1]
  return (h @ w + b[None])[:, 0]


class Estimate(NamedTuple):
  """The result of one estimation.

  Attributes:
    value: ``-d_loss`` of the trained critic on ``eval_size`` fresh samples of each distribution
      (for ``wgan_gp`` with ``drift = 0``: ``E_P[D] - E_Q[D]``; the penalty is not included).
    params: the trained critic's parameters (for :func:`mlp_critic`).
  """

  value: float
  params: list


class Task(NamedTuple):
  """One estimation for :func:`estimate_divergences`: objective ``name`` (with ``objective_params``)
  between P (``sample_p``, the "data") and Q (``sample_q``)."""

  name: str
  sample_p: Sampler
  sample_q: Sampler
  objective_params: dict = {}


def estimate_divergence(
  name: str,
  sample_p: Sampler,
  sample_q: Sampler,
  steps: int,
  rng: Array,
  *,
  batch_size: int = 256,
  hidden: int = 32,
  learning_rate: float = 3e-3,
  eval_size: int = 1 << 18,
  **objective_params,
) -> Estimate:
  """Maximises objective ``name``'s variational bound with an MLP critic; returns the bound's value.

  Each of the ``steps`` Adam steps (learning rate cosine-decayed from ``learning_rate`` to 1% of it, so
  the final critic is not dominated by SGD noise) uses ``batch_size`` fresh samples from each
  distribution, drawn with keys derived from ``rng``: the result is a deterministic function of the
  arguments.

  Args:
    name: an f-divergence of :data:`jgan.objectives.F_DIVERGENCES` (estimates ``D_f(P || Q)``) or
      ``"wgan_gp"`` (estimates ``W1(P, Q)``, biased up by about ``W1/(2 gp_weight)`` relative: see
      :func:`jgan.objectives.wgan_gp`).
    sample_p, sample_q: ``(key, n) -> [n, d]`` float32 samplers of P (the "data") and Q.
    steps: number of critic updates (one to a few thousand suffice in 1-D).
    rng: PRNG key.
    batch_size, hidden, learning_rate: the critic's training batch, width and Adam step size.
    eval_size: number of fresh samples per distribution for the final value (a multiple of 65536 or
      smaller than it); evaluated in chunks of 65536 to bound memory.
    **objective_params: passed to :func:`jgan.objectives.make_objective` (e.g. ``gp_weight``).

  Returns:
    :class:`Estimate` (``value`` a Python float, ``params`` the critic).
  """
  return estimate_divergences(
    [Task(name, sample_p, sample_q, objective_params)],
    steps,
    rng,
    batch_size=batch_size,
    hidden=hidden,
    learning_rate=learning_rate,
    eval_size=eval_size,
  )[0]


def estimate_divergences(
  tasks: Sequence[Task],
  steps: int,
  rng: Array,
  *,
  batch_size: int = 256,
  hidden: int = 32,
  learning_rate: float = 3e-3,
  eval_size: int = 1 << 18,
) -> list[Estimate]:
  """:func:`estimate_divergence` for several tasks in one compiled program.

  XLA's compile time, not the training, dominates a 1-D estimation on a CPU. Here the tasks run one
  after the other inside one ``jit`` (``lax.map`` over tasks, ``lax.switch`` on each task's objective),
  so the training loop is compiled once. Task ``i`` draws its samples with ``fold_in(rng, i)``, so
  ``estimate_divergences([t], ...)`` equals ``estimate_divergence(*t, ...)``. All samplers must return
  the same feature dimension ``d``.

  Returns:
    One :class:`Estimate` per task, in order.
  """
  tasks = [Task(*t) for t in tasks]
  for t in tasks:
    if t.name not in ESTIMABLE:
      raise ValueError(f"cannot estimate a divergence with objective {t.name!r}; valid choices: {', '.join(ESTIMABLE)}")
  for t in tasks:
    check_variance(t)
  chunk = min(eval_size, 1 << 16)
  if eval_size % chunk:
    raise ValueError(f"eval_size must be a multiple of {chunk} (or smaller), got {eval_size}")
  # Distinct (name, params) objectives become the branches of a lax.switch.
  task_keys = [(t.name, tuple(sorted(t.objective_params.items()))) for t in tasks]
  keys = list(dict.fromkeys(task_keys))
  objs = [make_objective(name, **dict(params)) for name, params in keys]
  branch = jnp.asarray([keys.index(k) for k in task_keys], jnp.int32)

  # All samples are drawn up front, outside the compiled program (a few MB per task): keeping the
  # PRNG out of the scan body shrinks what XLA compiles.
  parts: dict[str, list] = {"train_p": [], "train_q": [], "eval_p": [], "eval_q": [], "init": [], "pen": []}
  for i, t in enumerate(tasks):
    k_init, k_p, k_q, k_pen, k_ep, k_eq = jax.random.split(jax.random.fold_in(rng, i), 6)
    parts["train_p"].append(t.sample_p(k_p, steps * batch_size).reshape(steps, batch_size, -1))
    parts["train_q"].append(t.sample_q(k_q, steps * batch_size).reshape(steps, batch_size, -1))
    parts["eval_p"].append(t.sample_p(k_ep, eval_size).reshape(eval_size // chunk, chunk, -1))
    parts["eval_q"].append(t.sample_q(k_eq, eval_size).reshape(eval_size // chunk, chunk, -1))
    parts["init"].append(k_init)
    parts["pen"].append(jax.random.split(k_pen, steps))
  dims = {x.shape[-1] for x in parts["train_p"] + parts["train_q"]}
  if len(dims) != 1:
    raise ValueError(f"all samplers must return the same feature dimension, got {sorted(dims)}")
  (in_dim,) = dims
  xs = {k: jnp.stack(v) for k, v in parts.items()}
  optimiser = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.01))

  loss_branches = [lambda vp, vq, o=o: o.loss(vp, vq, ())[0] for o in objs]
  penalty_branches = [
    (lambda params, xp, xq, k, o=o: o.d_penalty(lambda x: mlp_critic(params, x), xp, xq, k))
    if o.d_penalty is not None
    else (lambda params, xp, xq, k: jnp.zeros((), jnp.float32))
    for o in objs
  ]

  def one_task(task):
    b = task["branch"]

    def d_loss(params, xp, xq, key):
      loss = jax.lax.switch(b, loss_branches, mlp_critic(params, xp), mlp_critic(params, xq))
      return loss + jax.lax.switch(b, penalty_branches, params, xp, xq, key)

    def train_step(carry, batch):
      params, opt_state = carry
      grads = jax.grad(d_loss)(params, *batch)
      updates, opt_state = optimiser.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    params = _init_mlp(task["init"], in_dim, hidden)
    batches = (task["train_p"], task["train_q"], task["pen"])
    (params, _), _ = jax.lax.scan(train_step, (params, optimiser.init(params)), batches)

    def chunk_loss(c):
      xp, xq = c
      return jax.lax.switch(b, loss_branches, mlp_critic(params, xp), mlp_critic(params, xq))

    # Every estimable loss is a difference of batch means, so the mean of equal-size chunk losses is
    # the loss of the whole sample.
    value = -jnp.mean(jax.lax.map(chunk_loss, (task["eval_p"], task["eval_q"])))
    return value, params

  values, params = jax.jit(lambda t: jax.lax.map(one_task, t))({**xs, "branch": branch})
  return [Estimate(float(values[i]), jax.tree.map(lambda a, i=i: a[i], params)) for i in range(len(tasks))]


def f_divergence_by_quadrature(
  name: str, logpdf_p: Callable, logpdf_q: Callable, lo: float, hi: float, breakpoints: tuple[float, ...] = ()
) -> float:
  """``D_f(P || Q) = int_lo^hi q(x) f(p(x)/q(x)) dx`` in float64 by ``scipy.integrate.quad``.

  Args:
    name: a key of :data:`jgan.objectives.F_DIVERGENCES` (its numpy ``f`` is used).
    logpdf_p, logpdf_q: vectorised numpy log-densities of P and Q on the real line.
    lo, hi: integration range, wide enough that both densities are negligible outside.
    breakpoints: points inside ``(lo, hi)`` where the integrand has kinks (e.g. where p = q for total
      variation); the range is split there.

  Returns:
    The divergence (a float; ``-log 4 <= D <= 0`` for "gan", otherwise ``>= 0``).
  """
  f = F_DIVERGENCES[name].f

  def integrand(x):
    lq = logpdf_q(x)
    with np.errstate(over="ignore", invalid="ignore"):
      v = math.exp(lq) * float(f(math.exp(min(logpdf_p(x) - lq, 700.0))))
    # 0 * inf far in a tail, where q underflowed and f(p/q) overflowed: the integrand is ~0 there.
    return v if math.isfinite(v) else 0.0

  pts = [lo, *sorted(b for b in breakpoints if lo < b < hi), hi]
  parts = [integrate.quad(integrand, a, b, epsabs=1e-12, epsrel=1e-10, limit=200)[0] for a, b in zip(pts, pts[1:])]
  return float(sum(parts))


class GaussianCase(NamedTuple):
  """A 1-D test case: P = N(loc_p, scale_p^2) (the data), Q = N(loc_q, scale_q^2)."""

  loc_p: float
  scale_p: float
  loc_q: float
  scale_q: float


# Per divergence, a pair with a moderate true value and a low-variance estimator. Pearson's E_Q[f*(T*)]
# involves (p/q)^2 and Neyman's E_P[T*] (q/p)^2: for N(0,1) vs N(mu,1) these have variance
# ~exp(6 mu^2), hence the smaller shift. W1 uses unequal scales so its optimal critic is not linear.
GAUSSIAN_CASES: dict[str, GaussianCase] = {
  "total_variation": GaussianCase(0.0, 1.0, 1.0, 1.0),
  "kl": GaussianCase(0.0, 1.0, 1.0, 1.0),
  "reverse_kl": GaussianCase(0.0, 1.0, 1.0, 1.0),
  "pearson": GaussianCase(0.0, 1.0, 0.5, 1.0),
  "neyman": GaussianCase(0.0, 1.0, 0.5, 1.0),
  "squared_hellinger": GaussianCase(0.0, 1.0, 1.0, 1.0),
  "jeffrey": GaussianCase(0.0, 1.0, 1.0, 1.0),
  "jensen_shannon": GaussianCase(0.0, 1.0, 1.0, 1.0),
  "gan": GaussianCase(0.0, 1.0, 1.0, 1.0),
  "wgan_gp": GaussianCase(0.0, 1.0, 1.0, 1.5),
}


def reference_value(name: str, case: GaussianCase, rng: np.random.Generator | None = None, n: int = 1 << 20) -> float:
  """The true divergence of ``case``: quadrature for f-divergences, ``scipy.stats.wasserstein_distance``
  on ``n`` samples of each distribution (numpy ``rng``, seed 0 by default) for ``"wgan_gp"``."""
  if name == "wgan_gp":
    rng = np.random.default_rng(0) if rng is None else rng
    xp, xq = rng.normal(case.loc_p, case.scale_p, n), rng.normal(case.loc_q, case.scale_q, n)
    return float(stats.wasserstein_distance(xp, xq))
  # p = q where the quadratic log-ratio vanishes: the kinks of total variation's |p - q|.
  a = 1 / case.scale_q**2 - 1 / case.scale_p**2
  b = 2 * (case.loc_p / case.scale_p**2 - case.loc_q / case.scale_q**2)
  c = case.loc_q**2 / case.scale_q**2 - case.loc_p**2 / case.scale_p**2 + 2 * math.log(case.scale_q / case.scale_p)
  roots = tuple(float(r.real) for r in np.roots([a, b, c]) if abs(r.imag) < 1e-12) if (a or b) else ()
  width = 40 * max(case.scale_p, case.scale_q)
  centre = 0.5 * (case.loc_p + case.loc_q)
  return f_divergence_by_quadrature(
    name,
    lambda x: stats.norm.logpdf(x, case.loc_p, case.scale_p),
    lambda x: stats.norm.logpdf(x, case.loc_q, case.scale_q),
    centre - width,
    centre + width,
    roots,
  )


# The settings of the table in docs/divergence_estimates.md and of tests/test_labs_divergence.py.
TABLE_SETTINGS = dict(steps=3000, batch_size=256, hidden=32, learning_rate=3e-3, eval_size=1 << 19)
# A large gradient-penalty weight: at the published 10 the GP critic overshoots W1 ~ 1 by ~W1/(2*10) = 5%.
TABLE_OBJECTIVE_PARAMS: dict[str, dict] = {"wgan_gp": {"gp_weight": 100.0}}


def gaussian_tasks(objective_params: dict[str, dict] | None = None) -> list[Task]:
  """One :class:`Task` per entry of :data:`GAUSSIAN_CASES` (objective parameters from
  ``objective_params``, default :data:`TABLE_OBJECTIVE_PARAMS`)."""
  objective_params = TABLE_OBJECTIVE_PARAMS if objective_params is None else objective_params
  return [
    Task(
      name, gaussian_sampler(c.loc_p, c.scale_p), gaussian_sampler(c.loc_q, c.scale_q), objective_params.get(name, {})
    )
    for name, c in GAUSSIAN_CASES.items()
  ]


class Row(NamedTuple):
  """A line of the divergence table: ``estimate`` vs ``true`` for ``task`` on ``case``."""

  task: Task
  case: GaussianCase
  true: float
  estimate: float

  @property
  def rel_error(self) -> float:
    return (self.estimate - self.true) / abs(self.true)


def format_table(rows: Sequence[Row]) -> str:
  """A Markdown table: divergence, P, Q, true value, estimate, relative error."""
  lines = [
    "| divergence | P | Q | true | estimated | rel. error |",
    "|---|---|---|---:|---:|---:|",
  ]
  for r in rows:
    label = r.task.name + "".join(f", {k}={v}" for k, v in r.task.objective_params.items())
    c = r.case
    lines.append(
      f"| {label} | N({c.loc_p:g}, {c.scale_p:g}²) | N({c.loc_q:g}, {c.scale_q:g}²) | {r.true:.5f} | "
      f"{r.estimate:.5f} | {100 * r.rel_error:+.2f}% |"
    )
  return "\n".join(lines)
