"""The independent float64 oracle: plain Python loops over every output element, input
channel and kernel tap, written from the definition and sharing no code with chanconv. The
section's functions are special cases of ``conv2d``; ``count_operations`` counts the
multiplications and additions such a loop performs."""

from __future__ import annotations

import numpy as np


def pads_for(h, w, kh, kw, stride, padding, dilation):
    """(top, bottom, left, right), from the textbook definitions of the padding modes."""
    (sh, sw), (dh, dw) = stride, dilation
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        out = []
        for size, k, s, d in ((h, kh, sh, dh), (w, kw, sw, dw)):
            target = -(-size // s)
            total = max((target - 1) * s + d * (k - 1) + 1 - size, 0)
            out += [total // 2, total - total // 2]
        return tuple(out)
    ph, pw = padding
    return (ph, ph, pw, pw)


def conv2d(x, k, bias=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """x (n, ci, h, w), k (co, ci/groups, kh, kw) -> (n, co, oh, ow), in float64."""
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    n, _, h, w = x.shape
    co, cig, kh, kw = k.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, pads
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cog = co // groups
    y = np.zeros((n, co, oh, ow))
    for b in range(n):
        for o in range(co):
            first = (o // cog) * cig
            for r in range(oh):
                for c in range(ow):
                    total = 0.0 if bias is None else float(bias[o])
                    for m in range(cig):
                        for i in range(kh):
                            for j in range(kw):
                                row, col = r * sh + i * dh - pt, c * sw + j * dw - pl
                                if 0 <= row < h and 0 <= col < w:
                                    total += x[b, first + m, row, col] * k[o, m, i, j]
                    y[b, o, r, c] = total
    return y


def conv2d_vjp(x, k, dy, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """(dX, dK, dbias) of sum(conv2d(x, k, bias) * dy), by the same loops run backwards."""
    x, k, dy = (np.asarray(a, np.float64) for a in (x, k, dy))
    n, _, h, w = x.shape
    co, cig, kh, kw = k.shape
    (sh, sw), (dh, dw), (pt, _, pl, _) = stride, dilation, pads
    _, _, oh, ow = dy.shape
    cog = co // groups
    dx, dk = np.zeros_like(x), np.zeros_like(k)
    for b in range(n):
        for o in range(co):
            first = (o // cog) * cig
            for r in range(oh):
                for c in range(ow):
                    for m in range(cig):
                        for i in range(kh):
                            for j in range(kw):
                                row, col = r * sh + i * dh - pt, c * sw + j * dw - pl
                                if 0 <= row < h and 0 <= col < w:
                                    dx[b, first + m, row, col] += k[o, m, i, j] * dy[b, o, r, c]
                                    dk[o, m, i, j] += x[b, first + m, row, col] * dy[b, o, r, c]
    return dx, dk, dy.sum(axis=(0, 2, 3))


def count_operations(x_shape, k_shape, stride, pads, dilation, groups, bias):
    """Multiplications and additions, forward and backward, as the loops above would do
    them if every sum of m terms cost m - 1 additions; padding zeros are multiplied in the
    forward pass and for the kernel gradient, but gradients landing in the padding are not
    computed."""
    n, _, h, w = x_shape
    co, cig, kh, kw = k_shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, pads
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    fwd_mul = fwd_add = 0
    for _b in range(n):
        for _o in range(co):
            for _r in range(oh):
                for _c in range(ow):
                    terms = cig * kh * kw
                    fwd_mul += terms
                    fwd_add += terms - 1 + (1 if bias else 0)
    # How many products land on each input position: the input gradient's loops above,
    # run with every kernel entry and every output gradient 1.
    dx_terms, _, _ = conv2d_vjp(np.zeros(x_shape), np.ones(k_shape), np.ones((n, co, oh, ow)),
                                stride, pads, dilation, groups)  # fmt: skip
    dx_terms = dx_terms.astype(np.int64)
    dk_terms = n * oh * ow  # per kernel entry
    k_size = co * cig * kh * kw
    bwd_mul = int(dx_terms.sum()) + k_size * dk_terms
    bwd_add = int((dx_terms[dx_terms > 0] - 1).sum()) + k_size * (dk_terms - 1)
    if bias:
        bwd_add += co * (dk_terms - 1)
    return {"multiplications": fwd_mul, "additions": fwd_add,
            "backward_multiplications": bwd_mul, "backward_additions": bwd_add,
            "output_shape": (n, co, oh, ow)}  # fmt: skip


def corr2d_multi_in_out(x, k):
    """x (ci, h, w), k (co, ci, kh, kw) -> (co, h-kh+1, w-kw+1)."""
    return conv2d(np.asarray(x)[None], k)[0]


def corr2d_multi_in(x, k):
    """x (ci, h, w), k (ci, kh, kw) -> (h-kh+1, w-kw+1)."""
    return corr2d_multi_in_out(x, np.asarray(k)[None])[0]


def corr2d(x, k):
    """x (h, w), k (kh, kw) -> (h-kh+1, w-kw+1)."""
    return corr2d_multi_in_out(np.asarray(x)[None], np.asarray(k)[None, None])[0]


def corr2d_multi_in_out_grads(x, k, g):
    """(dL/dx, dL/dk) for L = sum(corr2d_multi_in_out(x, k) * g)."""
    dx, dk, _ = conv2d_vjp(np.asarray(x)[None], k, np.asarray(g)[None])
    return dx[0], dk
