"""Projections of a layer's activations to a plane, for latent and embedding views: PCA by torch's ``linalg.eigh``
of the covariance (``pca_lowrank`` for wide layers), kept stable from one refresh to the next (each axis keeps the sign it had), so that points do
not flip sides while a network trains; and t-SNE (openTSNE) on demand, with progress and cancel."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

EXACT_WIDTH = 512  # up to this many features PCA is exact (an eigen-decomposition); wider ones are sketched


@dataclass(frozen=True)
class Projection:
    """``points`` (N, k) on the principal axes; ``axes`` (D, k) the axes; ``mean`` (D,); ``explained`` (k,) the
    share of the variance along each axis."""

    points: np.ndarray
    axes: np.ndarray
    mean: np.ndarray
    explained: np.ndarray


def pca(points: np.ndarray, k: int = 2, previous: Projection | None = None, seed: int = 0) -> Projection:
    """The first ``k`` principal axes of ``points`` (N, D) and the points on them. With ``previous`` (the last
    refresh's projection of the same layer), each axis is turned to point the way the previous one did. Fewer
    features than ``k``: the rest of the axes are zero. Deterministic for a given seed."""
    x = torch.as_tensor(np.asarray(points, dtype=np.float32))
    if x.dim() != 2 or len(x) == 0:
        raise ValueError(f"PCA takes points as (N, D) with N > 0, not {tuple(x.shape)}")
    n, d = x.shape
    mean = x.mean(dim=0)
    centred = x - mean
    if d <= EXACT_WIDTH:
        # exact: the covariance's eigenvectors (torch.linalg.eigh), ~1 ms for 2,000 points of 64 features
        cov = centred.T @ centred
        try:
            evals, evecs = torch.linalg.eigh(cov)
        except torch.linalg.LinAlgError:  # float32 LAPACK gave up (many repeated eigenvalues): in float64
            evals, evecs = (t.float() for t in torch.linalg.eigh(cov.double()))
        s, v = evals.flip(0).clamp_min(0).sqrt(), evecs.flip(1)
    else:  # wide layers: a seeded low-rank sketch (torch.pca_lowrank), global RNG untouched
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _, s, v = torch.pca_lowrank(centred, q=min(n, k + 30), center=False, niter=6)
    axes = torch.zeros(d, k)
    m = min(k, v.shape[1])
    axes[:, :m] = v[:, :m]
    if previous is not None and previous.axes.shape == (d, k):
        flip = torch.sign((axes * torch.as_tensor(previous.axes)).sum(dim=0))
        axes *= torch.where(flip == 0, torch.ones_like(flip), flip)
    total = centred.pow(2).sum()
    explained = torch.zeros(k)
    explained[:m] = s[:m].pow(2) / total if total > 0 else 0.0
    return Projection((centred @ axes).numpy(), axes.numpy(), mean.numpy(), explained.numpy())


TSNE_EARLY = 250  # openTSNE's early-exaggeration iterations (its default)
TSNE_ITERATIONS = 500  # and the iterations after them
TSNE_REPORT_EVERY = 10  # iterations between progress reports (and chances to cancel)
TSNE_FFT_FROM = 5000  # points from which the gradient's repulsive part is interpolated rather than tree-summed


def tsne(points: np.ndarray, *, seed: int = 0, progress: Callable[[float], bool] | None = None,
         initial: np.ndarray | None = None, perplexity: float = 30.0, iterations: int = TSNE_ITERATIONS,
         ) -> np.ndarray | None:
    """A t-SNE map of ``points`` (N, D) to (N, 2) float32 (openTSNE, one thread so training keeps its core).
    ``progress(share done)`` is called every few iterations and returns whether to go on: False cancels, and
    the answer is then None. ``initial`` (N, 2) starts from given positions (the plane shown before, so the
    map relates to it), else from the PCA plane. Deterministic for a given seed. At least 5 points."""
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or len(x) < 5:
        raise ValueError(f"t-SNE takes points as (N, D) with N ≥ 5, not {x.shape}")
    if initial is not None and np.shape(initial) != (len(x), 2):
        raise ValueError(f"initial positions must be ({len(x)}, 2), not {np.shape(initial)}")
    if progress is not None and not progress(0.0):
        return None
    # openTSNE's import takes ~1.5 s (scikit-learn, its kernels): paid on first use, in the caller's thread
    from openTSNE import TSNE
    from openTSNE.initialization import rescale

    total = TSNE_EARLY + iterations
    done = 0
    stopped = False

    def report(_iteration: int, _error: float, _embedding: np.ndarray) -> bool:
        """openTSNE's callback: True stops the optimisation."""
        nonlocal done, stopped
        done += TSNE_REPORT_EVERY
        stopped = progress is not None and not progress(min(done / total, 0.999))
        return stopped

    start: np.ndarray | str = "pca"
    if initial is not None:
        centred = np.asarray(initial, dtype=np.float64) - np.mean(initial, axis=0)
        if np.isfinite(centred).all() and np.std(centred[:, 0]) > 0:
            # openTSNE wants a start of small spread (std 1e-4) so the early phase can move it; same shape kept
            start = rescale(centred, target_std=1e-4)
    # perplexity must stay below a third of the points (openTSNE warns and lowers it otherwise)
    fit = TSNE(n_components=2, perplexity=min(perplexity, (len(x) - 1) / 3), early_exaggeration_iter=TSNE_EARLY,
               n_iter=iterations, initialization=start, random_state=seed, n_jobs=1,
               # interpolation (FFT) gradients cost O(N): ~2x faster than Barnes-Hut at 10,000 points
               negative_gradient_method="fft" if len(x) >= TSNE_FFT_FROM else "bh",
               callbacks=report if progress is not None else None, callbacks_every_iters=TSNE_REPORT_EVERY)
    embedding = fit.fit(x)
    if stopped:
        return None
    if progress is not None:
        progress(1.0)
    return np.ascontiguousarray(embedding, dtype=np.float32)
