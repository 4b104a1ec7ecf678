"""An independent float64 oracle for the section's functions: plain Python loops over every
output channel, output pixel, input channel and kernel offset, accumulating Python floats
(IEEE float64). Written from the definition of cross-correlation; it calls neither chanconv
nor any framework's convolution or matmul."""

from __future__ import annotations

import numpy as np


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def corr2d_multi_in_out(x, k):
    """x (ci, h, w), k (co, ci, kh, kw) -> (co, h-kh+1, w-kw+1)."""
    x, k = _f64(x, k)
    ci, h, w = x.shape
    co, ci_k, kh, kw = k.shape
    assert ci == ci_k, "the oracle takes consistent shapes only"
    oh, ow = h - kh + 1, w - kw + 1
    y = np.zeros((co, oh, ow))
    for o in range(co):
        for r in range(oh):
            for c in range(ow):
                total = 0.0
                for m in range(ci):
                    for i in range(kh):
                        for j in range(kw):
                            total += float(x[m, r + i, c + j]) * float(k[o, m, i, j])
                y[o, r, c] = total
    return y


def corr2d_multi_in(x, k):
    """x (ci, h, w), k (ci, kh, kw) -> (h-kh+1, w-kw+1): one output channel."""
    return corr2d_multi_in_out(x, np.asarray(k)[None])[0]


def corr2d(x, k):
    """x (h, w), k (kh, kw) -> (h-kh+1, w-kw+1): one input and one output channel."""
    return corr2d_multi_in_out(np.asarray(x)[None], np.asarray(k)[None, None])[0]


def corr2d_multi_in_out_grads(x, k, g):
    """(dL/dx, dL/dk) for L = sum(corr2d_multi_in_out(x, k) * g): the forward loops, each
    product's contribution sent back to the two factors."""
    x, k, g = _f64(x, k, g)
    ci, _, _ = x.shape
    co, _, kh, kw = k.shape
    _, oh, ow = g.shape
    dx, dk = np.zeros_like(x), np.zeros_like(k)
    for o in range(co):
        for r in range(oh):
            for c in range(ow):
                for m in range(ci):
                    for i in range(kh):
                        for j in range(kw):
                            dx[m, r + i, c + j] += float(k[o, m, i, j]) * float(g[o, r, c])
                            dk[o, m, i, j] += float(x[m, r + i, c + j]) * float(g[o, r, c])
    return dx, dk
