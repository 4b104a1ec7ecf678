"""The backward pass of :func:`chanconv.conv2d`, written against the protocol.

Frameworks with autograd differentiate the forward pass themselves; NumPy has none, so
``conv2d_vjp`` gives the vector-Jacobian product explicitly: the gradients of
``sum(conv2d(X, K, bias) * dY)`` with respect to X, K and bias. Like the forward ``direct``
algorithm it walks the kh*kw kernel offsets, each a matmul over channels, and it never
writes into a tensor: the input gradient is assembled by zero insertion and zero padding.
"""

from __future__ import annotations

from chanconv.algorithms import pad_axis, pad_input, spread_axis, window
from chanconv.geometry import ConvGeometry
from chanconv.protocol import ArrayBackend, Tensor


def convolve_vjp(
    backend: ArrayBackend, x: Tensor, k: Tensor, dy: Tensor, g: ConvGeometry, dtype: str
) -> tuple[Tensor, Tensor]:
    """(dX, dK) for x (n, ci, h, w), k (co, ci/groups, kh, kw), dy (n, co, oh, ow), all of
    one dtype and already checked."""
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
