"""The section's operations, written once against the protocol.

All four reduce to one computation, :func:`cross_correlate`: the input's kh*kw shifted
windows are stacked along the channel axis and one matrix multiplication over
(channel, offset) pairs produces every output channel at once. No Python loop runs over
pixels or channels and nothing is written in place, so the same code works on frameworks
whose tensors are immutable (TensorFlow) and stays differentiable everywhere.
"""

from __future__ import annotations

from chanconv.inputs import Operand, kind_source, operand, pick_backend, unify_dtypes
from chanconv.protocol import ArrayBackend, Tensor


def cross_correlate(
    backend: ArrayBackend, x: Tensor, k: Tensor, x_shape: tuple[int, ...],
    k_shape: tuple[int, ...],
) -> Tensor:  # fmt: skip
    """(n, ci, h, w) cross-correlated with (co, ci, kh, kw) gives (n, co, h-kh+1, w-kw+1).
    Shapes are passed in, already validated."""
    n, ci, h, w = x_shape
    co, _, kh, kw = k_shape
    oh, ow = h - kh + 1, w - kw + 1
    if kh == kw == 1:
        columns = backend.reshape(x, (n, ci, h * w))
    else:
        windows = [x[:, :, i : i + oh, j : j + ow] for i in range(kh) for j in range(kw)]
        # (n, ci, kh*kw, oh, ow): channel-major, then offset, matching K's memory order.
        columns = backend.reshape(backend.stack(windows, axis=2), (n, ci * kh * kw, oh * ow))
    y = backend.matmul(backend.reshape(k, (co, ci * kh * kw)), columns)
    return backend.reshape(y, (n, co, oh, ow))


def _check_fits(op: str, x: Operand, k: Operand) -> None:
    (h, w), (kh, kw) = x.shape[-2:], k.shape[-2:]
    if kh > h or kw > w:
        raise ValueError(
            f"{op}: the {kh}x{kw} kernel of K (shape {k.shape}) does not fit in the {h}x{w} "
            f"input X (shape {x.shape}); the kernel must not be larger than the input"
        )


def _check_channels(op: str, x: Operand, k: Operand, k_axis: int) -> None:
    ci, expected = x.shape[0], k.shape[k_axis]
    if ci != expected:
        raise ValueError(
            f"{op}: X has {ci} input channels but K expects {expected} "
            f"(X shape {x.shape}, K shape {k.shape}); they must be equal"
        )


def _run(
    op: str, X: object, K: object, x_layout: str, k_layout: str, k_channel_axis: int | None
) -> tuple[ArrayBackend, Operand, Operand, Tensor, Tensor]:
    backend = pick_backend(X=X, K=K)
    x = operand(backend, "X", X, len(x_layout.split(",")), x_layout)
    k = operand(backend, "K", K, len(k_layout.split(",")), k_layout)
    if k_channel_axis is not None:
        _check_channels(op, x, k, k_channel_axis)
    _check_fits(op, x, k)
    _, (xt, kt) = unify_dtypes(backend, x, k)
    return backend, x, k, xt, kt


def _finish(backend: ArrayBackend, y: Tensor, *operands: Operand) -> Tensor:
    like = kind_source(*operands)
    return y if like is None else backend.restore_kind(y, like)


def corr2d(X: object, K: object) -> Tensor:
    """2-D cross-correlation of one channel: X (h, w), K (kh, kw) -> (h-kh+1, w-kw+1).

    >>> corr2d([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
    array([[19., 25.],
           [37., 43.]], dtype=float32)
    """
    backend, x, k, xt, kt = _run("corr2d", X, K, "(h, w)", "(kh, kw)", None)
    (h, w), (kh, kw) = x.shape, k.shape
    y = cross_correlate(
        backend, backend.reshape(xt, (1, 1, h, w)), backend.reshape(kt, (1, 1, kh, kw)),
        (1, 1, h, w), (1, 1, kh, kw),
    )  # fmt: skip
    return _finish(backend, backend.reshape(y, (h - kh + 1, w - kw + 1)), x, k)


def corr2d_multi_in(X: object, K: object) -> Tensor:
    """Cross-correlation summed over input channels: X (ci, h, w), K (ci, kh, kw) ->
    (h-kh+1, w-kw+1). The section's first example gives [[56, 72], [104, 120]]."""
    backend, x, k, xt, kt = _run("corr2d_multi_in", X, K, "(ci, h, w)", "(ci, kh, kw)", 0)
    (ci, h, w), (_, kh, kw) = x.shape, k.shape
    y = cross_correlate(
        backend, backend.reshape(xt, (1, ci, h, w)), backend.reshape(kt, (1, ci, kh, kw)),
        (1, ci, h, w), (1, ci, kh, kw),
    )  # fmt: skip
    return _finish(backend, backend.reshape(y, (h - kh + 1, w - kw + 1)), x, k)


def corr2d_multi_in_out(X: object, K: object) -> Tensor:
    """One output channel per kernel: X (ci, h, w), K (co, ci, kh, kw) ->
    (co, h-kh+1, w-kw+1)."""
    backend, x, k, xt, kt = _run("corr2d_multi_in_out", X, K, "(ci, h, w)", "(co, ci, kh, kw)", 1)
    (ci, h, w), (co, _, kh, kw) = x.shape, k.shape
    y = cross_correlate(backend, backend.reshape(xt, (1, ci, h, w)), kt, (1, ci, h, w), k.shape)
    return _finish(backend, backend.reshape(y, (co, h - kh + 1, w - kw + 1)), x, k)


def corr2d_multi_in_out_1x1(X: object, K: object) -> Tensor:
    """A 1x1 convolution as the matrix multiplication it is: every pixel's channel vector
    times the (co, ci) weight matrix. X (ci, h, w), K (co, ci, 1, 1) -> (co, h, w)."""
    backend, x, k, xt, kt = _run("corr2d_multi_in_out_1x1", X, K, "(ci, h, w)", "(co, ci, 1, 1)", 1)
    (ci, h, w), (co, _, kh, kw) = x.shape, k.shape
    if (kh, kw) != (1, 1):
        raise ValueError(
            f"corr2d_multi_in_out_1x1: K has shape {k.shape}, a {kh}x{kw} kernel; this form "
            "needs a 1x1 kernel (use corr2d_multi_in_out for larger ones)"
        )
    y = backend.matmul(backend.reshape(kt, (co, ci)), backend.reshape(xt, (ci, h * w)))
    return _finish(backend, backend.reshape(y, (co, h, w)), x, k)
