"""The backward pass of [`chanconv.conv2d`][chanconv.conv2d], written against the protocol.

Frameworks with autograd differentiate the forward pass themselves; NumPy has none, so
``conv2d_vjp`` gives the vector-Jacobian product explicitly: the gradients of
``sum(conv2d(X, K, bias) * dY)`` with respect to X, K and bias. Like the forward ``direct``
algorithm it walks the kh*kw kernel offsets, each a matmul over channels, and it never
writes into a tensor: the input gradient is assembled by zero insertion and zero padding.

Backends with the ``chanconv.protocol.InPlaceWrites`` extension (NumPy) take the
im2col route instead, in the forward pass's tiles: per tile, dK += dY @ columns^T and the
column gradient K^T @ dY is folded back into dX by in-place accumulation, window by window,
straight into the unpadded dX. Two large matmuls per tile instead of 2*kh*kw small ones,
and no padded, spread or summed copies of dX.
"""

from __future__ import annotations

from typing import cast

from chanconv.algorithms import (
    InPlaceBackend,
    Tile,
    has_inplace,
    im2col_tiles,
    pad_axis,
    pad_input,
    scratch,
    source_window,
    spread_axis,
    unfold_into,
    window,
    window_spans,
)
from chanconv.geometry import ConvGeometry
from chanconv.protocol import ArrayBackend, Tensor


def _vjp_inplace(
    backend: InPlaceBackend, x: Tensor, k: Tensor, dy: Tensor, g: ConvGeometry, dtype: str
) -> tuple[Tensor, Tensor]:
    G, cig, cog = g.groups, g.ci // g.groups, g.co // g.groups
    K = cig * g.kh * g.kw
    k2t = backend.permute_dims(backend.reshape(k, (G, cog, K)), (0, 2, 1))  # (G, K, cog)
    dk2t = backend.zeros((G, K, cog), dtype)  # dK transposed, see below
    dx = backend.zeros((g.batch("conv2d_vjp in place"), g.ci, g.h, g.w), dtype)
    for tile in im2col_tiles(g, dtype):
        b0, b1, r0, r1 = tile
        nb, tr = b1 - b0, r1 - r0
        m = nb * tr * g.ow
        # dY's tile channels-first, (G, cog, nb*tr*ow): one copy, as the matmuls need.
        dyt = backend.reshape(backend.permute_dims(dy[b0:b1, :, r0:r1], (1, 0, 2, 3)), (G, cog, m))
        size = g.ci * g.kh * g.kw * m
        flat = scratch(backend, "columns", size, dtype)
        cols = backend.reshape(flat, (g.ci, g.kh, g.kw, nb, tr, g.ow))
        unfold_into(backend, x, g, tile, cols)
        # dK^T += columns @ dY^T, not dK += dY @ columns^T: NumPy's batched matmul runs the
        # former in BLAS and the latter (a transposed right operand with a long inner
        # dimension) in its own loop, 100x slower on LeNet's second layer.
        dyt_t = backend.permute_dims(dyt, (0, 2, 1))
        backend.write(
            dk2t, backend.matmul(backend.reshape(flat, (G, K, m)), dyt_t), accumulate=True
        )
        # The column gradient reuses the column buffer: the columns are no longer needed.
        backend.matmul_into(k2t, dyt, backend.reshape(flat, (G, K, m)))
        _fold_into(backend, dx, g, tile, cols)
    return dx, backend.reshape(backend.permute_dims(dk2t, (0, 2, 1)), g.kernel_shape)


def _fold_into(
    backend: InPlaceBackend, dx: Tensor, g: ConvGeometry, tile: Tile, dcols: Tensor
) -> None:
    """Each window's gradient in ``dcols`` (ci, kh, kw, nb, tr, ow) added where the window
    came from in dX; the parts that met padding are dropped."""
    for i, j, (ra, rb), (ca, cb) in window_spans(g, tile):
        if ra < rb and ca < cb:
            dst = source_window(dx, g, i, j, tile, (ra, rb), (ca, cb))
            src = dcols[:, i, j, :, ra:rb, ca:cb]
            backend.write(backend.permute_dims(dst, (1, 0, 2, 3)), src, accumulate=True)


def convolve_vjp(
    backend: ArrayBackend, x: Tensor, k: Tensor, dy: Tensor, g: ConvGeometry, dtype: str
) -> tuple[Tensor, Tensor]:
    """(dX, dK) for x (n, ci, h, w), k (co, ci/groups, kh, kw), dy (n, co, oh, ow), all of
    one dtype and already checked."""
    if has_inplace(backend) and g.n is not None:
        return _vjp_inplace(cast(InPlaceBackend, backend), x, k, dy, g, dtype)
    G, cig, cog, p = g.groups, g.ci // g.groups, g.co // g.groups, g.oh * g.ow
    (sh, sw), (dh, dw) = g.stride, g.dilation
    hp, wp = g.padded_hw
    xp = pad_input(backend, x, g, dtype)
    dyg = backend.reshape(dy, (-1, G, cog, p))  # n maybe unknown
    span_h, span_w = (g.oh - 1) * sh + 1, (g.ow - 1) * sw + 1
    dk_taps: list[Tensor] = []
    dxp: Tensor = None
    for i in range(g.kh):
        for j in range(g.kw):
            xs = backend.reshape(window(xp, g, i, j, (0, g.oh)), (-1, G, cig, p))
            # dK[:, :, i, j] = sum over images of dY @ window^T, per group.
            tap = backend.sum(backend.matmul(dyg, backend.permute_dims(xs, (0, 1, 3, 2))), axis=0)
            dk_taps.append(backend.reshape(tap, (g.co, cig)))
            # The window's gradient, K[:, :, i, j]^T @ dY, goes back where the window came from.
            kt = backend.permute_dims(backend.reshape(k[:, :, i, j], (G, cog, cig)), (0, 2, 1))
            dwin = backend.reshape(backend.matmul(kt, dyg), (-1, g.ci, g.oh, g.ow))
            dwin = spread_axis(backend, spread_axis(backend, dwin, 2, sh, dtype), 3, sw, dtype)
            dwin = pad_axis(backend, dwin, i * dh, hp - i * dh - span_h, 2, dtype)
            dwin = pad_axis(backend, dwin, j * dw, wp - j * dw - span_w, 3, dtype)
            dxp = dwin if dxp is None else dxp + dwin
    pt, _, pl, _ = g.pads
    dx = dxp[:, :, pt : pt + g.h, pl : pl + g.w]
    dk = backend.reshape(backend.stack(dk_taps, axis=2), g.kernel_shape)
    return dx, dk
