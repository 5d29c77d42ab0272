"""A linear Bradley-Terry head on frozen features: fits in seconds and knows where it is unsure.

P(a beats b) = sigmoid(w . (f_a - f_b)), where f is a side's frozen feature
(`features.py`); the reward of one response is w . f. With no intercept the
model is antisymmetric by construction: swapping the sides flips the margin.

Fit: a ridge-penalised logistic regression on feature differences, with
soft labels q = P(a better) (1 for a plain chosen/rejected pair):

    loss(w) = mean_i [ -q_i log sigmoid(z_i) - (1 - q_i) log sigmoid(-z_i) ] + ridge/2 |w|^2,  z = X w

solved with L-BFGS (scipy). The ridge strength is chosen by K-fold
cross-validation on the training pairs only, folds grouped by prompt, by
held-out log loss.

Uncertainty: a Laplace posterior, w ~ N(w_map, H^-1) with H the Hessian of
the penalised negative log-likelihood at w_map, and K members sampled from
it. We chose it over K bootstrap fits because it costs one fit instead of K
(the CV already costs folds x grid fits), it is the standard epistemic
posterior of a convex model, and its spread shrinks as labels arrive, which
is what active learning reads. Scores use w_map; the members give the
disagreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEAD_FILE = "head.safetensors"
RIDGE_GRID = tuple(float(x) for x in np.logspace(-4, 1, 11))


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def soft_bt_loss(z: np.ndarray, q: np.ndarray) -> float:
    """Mean -[q log sigmoid(z) + (1 - q) log sigmoid(-z)]: the Bradley-Terry loss with soft labels."""
    return float(np.mean(_softplus(z) - q * z)) if len(z) else float("nan")


def fit_map(x: np.ndarray, q: np.ndarray, ridge: float, w0: np.ndarray | None = None) -> np.ndarray:
    """The penalised maximum-likelihood weights for differences `x` (n, d) and soft labels `q` (n,)."""
    from scipy.optimize import minimize

    n = max(len(x), 1)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        loss = np.sum(_softplus(z) - q * z) / n + 0.5 * ridge * (w @ w)
        grad = x.T @ (_sigmoid(z) - q) / n + ridge * w
        return float(loss), grad

    start = np.zeros(x.shape[1]) if w0 is None else w0
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 500, "gtol": 1e-6})
    return result.x


def _folds(groups: Sequence[str], k: int, seed: int) -> np.ndarray:
    """A fold number per row; every row of a group (a prompt) in the same fold."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    fold_of = {name: i % k for i, name in enumerate(names)}
    return np.array([fold_of[g] for g in groups])


def choose_ridge(
    x: np.ndarray,
    q: np.ndarray,
    groups: Sequence[str],
    *,
    grid: Sequence[float] = RIDGE_GRID,
    folds: int = 5,
    seed: int = 0,
    max_rows: int = 50_000,
) -> tuple[float, dict[float, float]]:
    """The ridge strength with the lowest cross-validated log loss, and the loss of each.

    Above `max_rows` pairs the CV runs on a random subset of that many (the
    best strength moves little past it), so its cost stays bounded.
    """
    if len(x) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))
        x, q, groups = x[keep], q[keep], [groups[i] for i in keep]
    fold = _folds(groups, min(folds, max(2, len(set(groups)))), seed)
    losses: dict[float, float] = {}
    for ridge in sorted(grid, reverse=True):  # strong to weak: each fold warm-starts from the last
        total, count = 0.0, 0
        for f in np.unique(fold):
            train, val = fold != f, fold == f
            if not train.any() or not val.any():
                continue
            w = fit_map(x[train], q[train], ridge)
            total += soft_bt_loss(x[val] @ w, q[val]) * val.sum()
            count += val.sum()
        losses[ridge] = total / count if count else float("inf")
    best = min(losses, key=lambda r: (losses[r], -r))  # ties: the stronger ridge
    return best, losses


def laplace_members(x: np.ndarray, q: np.ndarray, w: np.ndarray, ridge: float, k: int, seed: int) -> np.ndarray:
    """K weight vectors drawn from the Laplace posterior around `w` (rows)."""
    if k <= 0:
        return np.empty((0, len(w)))
    n = len(x)
    p = _sigmoid(x @ w)
    # Hessian of the summed (not mean) penalised negative log-likelihood.
    hessian = (x * (p * (1 - p))[:, None]).T @ x + n * ridge * np.eye(len(w))
    chol = np.linalg.cholesky(hessian)
    z = np.random.default_rng(seed).standard_normal((len(w), k))
    # w + L^-T z has covariance (L L^T)^-1 = H^-1.
    from scipy.linalg import solve_triangular

    return (w[:, None] + solve_triangular(chol.T, z, lower=False)).T


@dataclass
class LinearHead:
    weight: np.ndarray  # (d,): w_map, what scores
    members: np.ndarray  # (K, d): posterior samples, for the disagreement
    ridge: float

    def rewards(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weight

    def member_margins(self, diff: np.ndarray) -> np.ndarray:
        """(K, n) margins of each member on pair differences (f_a - f_b)."""
        return self.members @ diff.T

    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        save_file(
            {"weight": self.weight.astype(np.float32), "members": self.members.astype(np.float32)},
            str(Path(folder) / HEAD_FILE),
            metadata={"ridge": repr(self.ridge)},
        )

    @classmethod
    def load(cls, folder: str | Path) -> LinearHead:
        from safetensors import safe_open

        with safe_open(str(Path(folder) / HEAD_FILE), framework="numpy") as fh:
            ridge = float(fh.metadata().get("ridge", "nan"))
            return cls(fh.get_tensor("weight").astype(np.float64), fh.get_tensor("members").astype(np.float64), ridge)


def fit_head(
    diff: np.ndarray,
    q: np.ndarray,
    groups: Sequence[str],
    *,
    members: int = 5,
    folds: int = 5,
    grid: Sequence[float] = RIDGE_GRID,
    seed: int = 0,
) -> tuple[LinearHead, dict]:
    """Choose the ridge by CV, fit w_map on all training pairs, sample the posterior members.

    `diff` is f_a - f_b (or f_chosen - f_rejected with q = 1) per training pair.
    Returns the head and what the fit found (ridge, CV losses).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        # One BLAS thread: these products are small, and OpenBLAS's threads
        # cost 10-50x more than they save here, worse on a busy machine.
        return _fit_head(
            np.asarray(diff, dtype=np.float64),
            np.asarray(q, dtype=np.float64),
            groups,
            members=members,
            folds=folds,
            grid=grid,
            seed=seed,
        )


def _fit_head(
    diff: np.ndarray,
    q: np.ndarray,
    groups: Sequence[str],
    *,
    members: int,
    folds: int,
    grid: Sequence[float],
    seed: int,
) -> tuple[LinearHead, dict]:
    # Features have an arbitrary scale: fit on unit-RMS differences so one ridge
    # grid suits every backbone, then scale the weights back.
    scale = float(np.sqrt(np.mean(diff**2))) or 1.0
    x = diff / scale
    if len(set(groups)) >= 2 and len(grid) > 1:
        ridge, losses = choose_ridge(x, q, groups, grid=grid, folds=folds, seed=seed)
    else:
        ridge, losses = float(grid[len(grid) // 2]), {}
    w = fit_map(x, q, ridge)
    sampled = laplace_members(x, q, w, ridge, members, seed)
    head = LinearHead(weight=w / scale, members=sampled / scale, ridge=ridge)
    info = {
        "ridge": ridge,
        "cv_log_loss": {f"{r:.4g}": round(v, 5) for r, v in sorted(losses.items())},
        "feature_scale": scale,
    }
    return head, info
