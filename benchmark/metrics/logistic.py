"""Multinomial logistic regression with fixed, documented settings: the Higgins classifier.

Why not scikit-learn: its ``LogisticRegression`` defaults (solver, ``multi_class``, iteration
limit, tolerance) have changed between releases, it switches to a different (binary) model when
there are two classes, and it is not otherwise a dependency of the project. Here every setting is
a constant of this module, and the objective is strictly convex, so the fitted model is the
unique optimum whatever the solver's path; the solver only has to get there.

The model (all in float64):

- features are standardised with the mean and standard deviation of the training points
  (``ddof=0``; a constant feature gets standard deviation 1, i.e. is only centred), which makes
  the classifier, and so the Higgins score, invariant to rescaling latent dimensions;
- softmax over the classes present in the training labels, with weights ``W`` (D, C) and
  intercepts ``b`` (C,);
- objective ``mean_i(-log p(y_i | x_i)) + ||W||^2 / (2 * C_REG * n)`` with ``C_REG = 1``: the
  same optimum as scikit-learn's ``LogisticRegression(C=1.0)`` (multinomial, L2 penalty, the
  intercept not penalised), which disentanglement_lib used, but on standardised features;
- solved by Newton's method with conjugate-gradient steps on exact Hessian-vector products
  (truncated Newton), starting from zero, with a backtracking (Armijo) line search; stops when
  the largest absolute gradient entry is below ``TOL`` or after ``MAX_ITER`` Newton steps.

No random numbers are involved: the same data always gives the same model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C_REG = 1.0
TOL = 1e-8
MAX_ITER = 100
MAX_CG_ITER = 200
LINE_SEARCH_STEPS = 50
ARMIJO_C = 1e-4

SETTINGS = {
    "model": "multinomial logistic regression (softmax), intercept not penalised",
    "implementation": "benchmark.metrics.logistic (numpy, float64)",
    "penalty": "l2",
    "C": C_REG,
    "objective": "mean cross-entropy + ||W||^2 / (2 C n)",
    "feature_standardisation": "z-score with the training points' mean and std (ddof=0); "
    "constant features only centred",
    "solver": "Newton-CG (exact Hessian-vector products) with Armijo backtracking",
    "init": "zeros",
    "tol": TOL,
    "tol_meaning": "max |gradient entry| of the objective",
    "max_iter": MAX_ITER,
    "max_cg_iter": MAX_CG_ITER,
}


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=1, keepdims=True)
    shifted = logits - m
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


@dataclass
class LogisticModel:
    """A fitted classifier: predicts ``classes[argmax(standardise(x) @ coef + intercept)]``."""

    classes: np.ndarray  # (C,) int64 labels the model can predict
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    coef: np.ndarray  # (D, C)
    intercept: np.ndarray  # (C,)
    n_iter: int
    converged: bool
    grad_max: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        if len(self.classes) == 1:
            return np.full(len(x), self.classes[0], dtype=np.int64)
        return self.classes[np.argmax(self.decision(x), axis=1)]

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(x) == y))


def fit(x: np.ndarray, y: np.ndarray, standardise: bool = True) -> LogisticModel:
    """Fit the classifier to features ``x`` (n, D) and integer labels ``y`` (n,).

    ``standardise=False`` fits on the raw features, as disentanglement_lib does (the penalty then
    depends on the features' scale).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n, d = x.shape
    mean = x.mean(axis=0) if standardise else np.zeros(d)
    scale = x.std(axis=0) if standardise else np.ones(d)
    scale[scale == 0] = 1.0
    xs = (x - mean) / scale
    classes, yi = np.unique(y, return_inverse=True)
    c = len(classes)
    if c == 1:
        return LogisticModel(classes, mean, scale, np.zeros((d, 1)), np.zeros(1), 0, True, 0.0)
    onehot = np.zeros((n, c))
    onehot[np.arange(n), yi] = 1.0
    lam = 1.0 / (C_REG * n)

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return theta[: d * c].reshape(d, c), theta[d * c :]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        w, b = unpack(theta)
        logp = _log_softmax(xs @ w + b)
        loss = -np.sum(logp * onehot) / n + 0.5 * lam * np.sum(w * w)
        p = np.exp(logp)
        r = (p - onehot) / n
        grad = np.concatenate([(xs.T @ r + lam * w).ravel(), r.sum(axis=0)])
        return loss, grad, p

    def hess_vec(p: np.ndarray, v: np.ndarray) -> np.ndarray:
        vw, vb = unpack(v)
        s = xs @ vw + vb
        r = p * (s - np.sum(p * s, axis=1, keepdims=True)) / n
        return np.concatenate([(xs.T @ r + lam * vw).ravel(), r.sum(axis=0)])

    theta = np.zeros(d * c + c)
    loss, grad, p = objective(theta)
    n_iter = 0
    converged = False
    for n_iter in range(1, MAX_ITER + 1):
        gmax = float(np.max(np.abs(grad)))
        if gmax <= TOL:
            converged = True
            n_iter -= 1
            break
        # Conjugate gradient on H step = -grad, to a relative residual that tightens near the end.
        gnorm = float(np.linalg.norm(grad))
        cg_tol = min(0.5, np.sqrt(gnorm)) * gnorm
        step = np.zeros_like(theta)
        resid = -grad.copy()
        direc = resid.copy()
        rr = float(resid @ resid)
        for _ in range(MAX_CG_ITER):
            hd = hess_vec(p, direc)
            curv = float(direc @ hd)
            if curv <= 0:
                break
            alpha = rr / curv
            step += alpha * direc
            resid -= alpha * hd
            rr_new = float(resid @ resid)
            if np.sqrt(rr_new) <= cg_tol:
                break
            direc = resid + (rr_new / rr) * direc
            rr = rr_new
        if not step.any():
            step = -grad
        slope = float(grad @ step)
        t = 1.0
        for _ in range(LINE_SEARCH_STEPS):
            new_theta = theta + t * step
            new_loss, new_grad, new_p = objective(new_theta)
            if new_loss <= loss + ARMIJO_C * t * slope:
                break
            t *= 0.5
        else:  # no decrease possible at float precision: we are at the optimum
            converged = gmax <= 1e3 * TOL
            break
        theta, loss, grad, p = new_theta, new_loss, new_grad, new_p
    else:
        converged = float(np.max(np.abs(grad))) <= TOL
    w, b = unpack(theta)
    return LogisticModel(classes, mean, scale, w, b, n_iter, converged, float(np.max(np.abs(grad))))
