"""The public convolution operations: the section's four functions, the general ``conv2d``
and its explicit backward pass ``conv2d_vjp``.

Every function here checks its arguments, converts them to one backend and one dtype, and
hands the computation to ``chanconv.algorithms``. The section's functions are ``conv2d`` on
one unbatched image with stride 1 and no padding; only the 1x1 form keeps its own body, the
single matrix multiplication the section uses it to show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from chanconv.algorithms import (
    check_algorithm,
    choose_algorithm,
    convolve,
    convolve_native_channels_last,
    has_native,
    has_native_channels_last,
    native_limit,
)
from chanconv.autotune import autotune_enabled, tuned_algorithm
from chanconv.geometry import ConvGeometry, IntPair, Padding, conv_geometry
from chanconv.grad import convolve_vjp
from chanconv.inputs import (
    Operand,
    kind_source,
    operand,
    pick_backend,
    result_dtype,
    unify_dtypes,
)
from chanconv.protocol import ArrayBackend, Tensor
from chanconv.registry import backend_for, register_cache

if TYPE_CHECKING:
    from chanconv.fourier import SpectrumCache

#: conv2d's checked signatures: (argument types, shapes, dtypes, settings) -> what the checks
#: worked out (backend, geometry, dtype, unbatched, casts, algorithm). Cleared when an
#: adapter is registered, since dispatch may change.
_Plan = tuple[ArrayBackend, ConvGeometry, str, bool, tuple[bool, ...], str]
_plans: dict[tuple[object, ...], _Plan]
_plans = register_cache({})
_MAX_PLANS = 1024


def _plan_key(layout: str, X: object, K: object, bias: object,
              *settings: object) -> tuple[object, ...] | None:  # fmt: skip
    """The plan cache's key: every check conv2d makes depends only on the arguments'
    types, shapes and dtypes and the settings. None for arguments with no shape (lists)."""
    try:
        return (layout, type(X), X.shape, X.dtype, type(K), K.shape, K.dtype,  # type: ignore[attr-defined]
                None if bias is None else (type(bias), bias.shape, bias.dtype),  # type: ignore[attr-defined]
                *settings)  # fmt: skip
    except AttributeError:
        return None


def _lookup(key: tuple[object, ...] | None) -> _Plan | None:
    try:
        return None if key is None else _plans.get(key)
    except TypeError:  # a setting that does not hash (a list)
        return None


def _remember(key: tuple[object, ...] | None, ops: list[Operand], plan: _Plan) -> None:
    """Keep ``plan`` (its casts still per operand) for ``key``, when every argument was a
    tensor (lists are converted anew on every call)."""
    if key is None or not all(op.is_tensor for op in ops):
        return
    if len(_plans) >= _MAX_PLANS:
        _plans.clear()
    backend, g, dtype, unbatched, _, route = plan
    casts = tuple(op.dtype != dtype for op in ops)
    try:
        _plans[key] = (backend, g, dtype, unbatched, casts if any(casts) else (), route)
    except TypeError:  # a setting that does not hash
        pass


def _planned_tensors(backend: ArrayBackend, dtype: str, casts: tuple[bool, ...],
                     X: object, K: object, bias: object) -> list[Tensor]:  # fmt: skip
    """A remembered signature's arguments as tensors of the backend, cast where the plan
    says so."""
    tensors = [backend.asarray(X), backend.asarray(K)]
    if bias is not None:
        tensors.append(backend.asarray(bias))
    if casts:
        tensors = [backend.astype(t, dtype) if c else t
                   for t, c in zip(tensors, casts, strict=True)]  # fmt: skip
    return tensors


def _finish(backend: ArrayBackend, y: Tensor, *operands: Operand) -> Tensor:
    return _in_kind_of(backend, y, kind_source(*operands))


def _in_kind_of(backend: ArrayBackend, y: Tensor, like: object | None) -> Tensor:
    """``y`` in the kind of tensor the user passed (MXNet's two array styles), if any."""
    return y if like is None else backend.restore_kind(y, like)


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


def _require_known(
    op: str, operand: Operand, layout: str, needed_by: str, skip: int = 0,
    free: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """ValueError if a dimension of ``operand`` (after the first ``skip``, and other than
    the axes named in ``free``) is unknown until run time (``None``, inside a traced graph):
    what ``needed_by`` cannot do without."""
    axes = layout.strip("()").split(", ")
    for axis, size in list(zip(axes, operand.shape, strict=False))[skip:]:
        if size is None and axis not in free:
            _refuse_unknown(op, operand, layout, axis, needed_by)


def _refuse_unknown(op: str, operand: Operand, layout: str, axis: str, needed_by: str,
                    why: str = "") -> None:  # fmt: skip
    only = "the batch, and h and w for algorithm 'native'," if axis in ("h", "w") else "the batch"
    raise ValueError(
        f"{op}: dimension {axis} of {operand.name} (shape {operand.shape}, laid out as "
        f"{layout}) is unknown until run time, and {needed_by} needs its value{why}; only "
        f"{only} may be unknown: give the graph's input a static {axis} (e.g. a "
        "tf.TensorSpec with it set)"
    )


def _section_op(
    op: str, X: object, K: object, x_layout: str, k_layout: str, k_channel_axis: int | None
) -> tuple[ArrayBackend, Operand, Operand, Tensor, Tensor, str]:
    backend = pick_backend(X=X, K=K)
    x = operand(backend, "X", X, x_layout.count(",") + 1, x_layout)
    k = operand(backend, "K", K, k_layout.count(",") + 1, k_layout)
    _require_known(op, x, x_layout, op)
    _require_known(op, k, k_layout, op)
    if k_channel_axis is not None:
        _check_channels(op, x, k, k_channel_axis)
    _check_fits(op, x, k)
    dtype, (xt, kt) = unify_dtypes(backend, x, k)
    return backend, x, k, xt, kt, dtype


def _valid(backend: ArrayBackend, x: Tensor, k: Tensor, x4: tuple[int, ...],
           k4: tuple[int, ...], dtype: str) -> Tensor:  # fmt: skip
    """Stride 1, no padding, one image: the section's setting. A 1x1 kernel always runs as
    the matmul, the very computation of ``corr2d_multi_in_out_1x1``, so the section's
    1e-6 check between the two holds exactly on every backend."""
    g = conv_geometry(x4, k4)
    algorithm = "im2col" if g.pointwise else "auto"
    return convolve(backend, backend.reshape(x, x4), backend.reshape(k, k4), g, dtype, algorithm)


def corr2d(X: object, K: object) -> Tensor:
    """2-D cross-correlation of one channel: X (h, w), K (kh, kw) -> (h-kh+1, w-kw+1).

    Args:
        X: The input, shape (h, w): a tensor of any supported framework or nested lists of
            numbers (which become a float32 tensor of the active backend).
        K: The kernel, shape (kh, kw), with kh <= h and kw <= w; a tensor or nested lists.

    Returns:
        The (h-kh+1, w-kw+1) result, a tensor of the framework (and array kind) of the
            tensor arguments, in their common floating dtype.

    Raises:
        TypeError: An argument is neither a tensor nor nested lists of real numbers, has a
            non-floating dtype, or X and K are tensors of two different frameworks.
        ValueError: X or K is not 2-D, is empty, or the kernel is larger than the input.

    Examples:
        >>> corr2d([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
        array([[19., 25.],
               [37., 43.]], dtype=float32)
    """
    backend, x, k, xt, kt, dtype = _section_op("corr2d", X, K, "(h, w)", "(kh, kw)", None)
    (h, w), (kh, kw) = x.shape, k.shape
    y = _valid(backend, xt, kt, (1, 1, h, w), (1, 1, kh, kw), dtype)
    return _finish(backend, backend.reshape(y, (h - kh + 1, w - kw + 1)), x, k)


def corr2d_multi_in(X: object, K: object) -> Tensor:
    """Cross-correlation summed over input channels: X (ci, h, w), K (ci, kh, kw) ->
    (h-kh+1, w-kw+1). The section's first example gives [[56, 72], [104, 120]].

    Args:
        X: The input, shape (ci, h, w): a tensor of any supported framework or nested lists
            of numbers (which become a float32 tensor of the active backend).
        K: The kernel, shape (ci, kh, kw): one 2-D kernel per input channel, with the same
            ci as X and kh <= h, kw <= w.

    Returns:
        The (h-kh+1, w-kw+1) sum over channels, a tensor of the framework (and array kind)
            of the tensor arguments, in their common floating dtype.

    Raises:
        TypeError: An argument is neither a tensor nor nested lists of real numbers, has a
            non-floating dtype, or X and K are tensors of two different frameworks.
        ValueError: X or K is not 3-D, is empty, their channel counts differ, or the
            kernel is larger than the input.

    Examples:
        >>> X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
        >>> K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
        >>> corr2d_multi_in(X, K)
        array([[ 56.,  72.],
               [104., 120.]], dtype=float32)
    """
    backend, x, k, xt, kt, dtype = _section_op(
        "corr2d_multi_in", X, K, "(ci, h, w)", "(ci, kh, kw)", 0
    )
    (ci, h, w), (_, kh, kw) = x.shape, k.shape
    y = _valid(backend, xt, kt, (1, ci, h, w), (1, ci, kh, kw), dtype)
    return _finish(backend, backend.reshape(y, (h - kh + 1, w - kw + 1)), x, k)


def corr2d_multi_in_out(X: object, K: object) -> Tensor:
    """One output channel per kernel: X (ci, h, w), K (co, ci, kh, kw) ->
    (co, h-kh+1, w-kw+1).

    Args:
        X: The input, shape (ci, h, w): a tensor of any supported framework or nested lists
            of numbers (which become a float32 tensor of the active backend).
        K: The kernels, shape (co, ci, kh, kw): one (ci, kh, kw) kernel per output channel,
            with the same ci as X and kh <= h, kw <= w.

    Returns:
        The (co, h-kh+1, w-kw+1) result, output channel o being
            ``corr2d_multi_in(X, K[o])``; a tensor of the framework (and array kind) of the
            tensor arguments, in their common floating dtype.

    Raises:
        TypeError: An argument is neither a tensor nor nested lists of real numbers, has a
            non-floating dtype, or X and K are tensors of two different frameworks.
        ValueError: X is not 3-D or K not 4-D, either is empty, K's second axis differs
            from X's channel count, or the kernel is larger than the input.

    Examples:
        The section stacks K, K + 1 and K + 2 into three output channels:

        >>> import numpy as np
        >>> X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
        >>> K = np.array([[[0, 1], [2, 3]], [[1, 2], [3, 4]]], dtype="float32")
        >>> corr2d_multi_in_out(X, np.stack([K, K + 1, K + 2]))
        array([[[ 56.,  72.],
                [104., 120.]],
        <BLANKLINE>
               [[ 76., 100.],
                [148., 172.]],
        <BLANKLINE>
               [[ 96., 128.],
                [192., 224.]]], dtype=float32)
    """
    backend, x, k, xt, kt, dtype = _section_op(
        "corr2d_multi_in_out", X, K, "(ci, h, w)", "(co, ci, kh, kw)", 1
    )
    (ci, h, w), (co, _, kh, kw) = x.shape, k.shape
    y = _valid(backend, xt, kt, (1, ci, h, w), k.shape, dtype)
    return _finish(backend, backend.reshape(y, (co, h - kh + 1, w - kw + 1)), x, k)


def corr2d_multi_in_out_1x1(X: object, K: object) -> Tensor:
    """A 1x1 convolution as the matrix multiplication it is: every pixel's channel vector
    times the (co, ci) weight matrix. X (ci, h, w), K (co, ci, 1, 1) -> (co, h, w).

    Args:
        X: The input, shape (ci, h, w): a tensor of any supported framework or nested lists
            of numbers (which become a float32 tensor of the active backend).
        K: The 1x1 kernels, shape (co, ci, 1, 1), with the same ci as X.

    Returns:
        The (co, h, w) result, equal to ``corr2d_multi_in_out(X, K)`` up to rounding; a
            tensor of the framework (and array kind) of the tensor arguments, in their common
            floating dtype.

    Raises:
        TypeError: An argument is neither a tensor nor nested lists of real numbers, has a
            non-floating dtype, or X and K are tensors of two different frameworks.
        ValueError: X is not 3-D or K not 4-D, either is empty, K's second axis differs
            from X's channel count, or K's kernel is not 1x1.

    Examples:
        Two output channels: the sum and the difference of the two input channels.

        >>> X = [[[1, 2], [3, 4]], [[10, 20], [30, 40]]]
        >>> K = [[[[1]], [[1]]], [[[1]], [[-1]]]]
        >>> corr2d_multi_in_out_1x1(X, K)
        array([[[ 11.,  22.],
                [ 33.,  44.]],
        <BLANKLINE>
               [[ -9., -18.],
                [-27., -36.]]], dtype=float32)
    """
    backend, x, k, xt, kt, _ = _section_op(
        "corr2d_multi_in_out_1x1", X, K, "(ci, h, w)", "(co, ci, 1, 1)", 1
    )
    (ci, h, w), (co, _, kh, kw) = x.shape, k.shape
    if (kh, kw) != (1, 1):
        raise ValueError(
            f"corr2d_multi_in_out_1x1: K has shape {k.shape}, a {kh}x{kw} kernel; this form "
            "needs a 1x1 kernel (use corr2d_multi_in_out for larger ones)"
        )
    y = backend.matmul(backend.reshape(kt, (co, ci)), backend.reshape(xt, (ci, h * w)))
    return _finish(backend, backend.reshape(y, (co, h, w)), x, k)


def _conv_operands(
    op: str, X: object, K: object, bias: object, stride: IntPair, padding: Padding,
    dilation: IntPair, groups: int, extra: dict[str, object] | None = None,
    algorithm: str = "direct", channels_last: bool = False,
) -> tuple[ArrayBackend, ConvGeometry, list[Operand], bool]:  # fmt: skip
    """Check conv2d-style arguments; returns the backend, the geometry (always batched,
    channels first whatever X's layout), the operands X, K, [bias], [extra...], and whether
    X came unbatched. ``channels_last``: X is (n, h, w, ci) or (h, w, ci), and is left so."""
    backend = pick_backend(X=X, K=K, bias=bias, **(extra or {}))
    if channels_last:
        x = operand(backend, "X", X, (3, 4), "(n, h, w, ci) or (h, w, ci)")
    else:
        x = operand(backend, "X", X, (3, 4), "(n, ci, h, w) or (ci, h, w)")
    k = operand(backend, "K", K, 4, "(co, ci/groups, kh, kw)")
    unbatched = len(x.shape) == 3
    needed_by = f"{op} (algorithm {algorithm!r})"
    layout = ("(h, w, ci)" if channels_last else "(ci, h, w)") if unbatched else (
        "(n, h, w, ci)" if channels_last else "(n, ci, h, w)")  # fmt: skip
    # The framework's own convolution needs no extent: h and w may be unknown where it can
    # run (checked once the geometry is known, below).
    free = ("h", "w") if algorithm in ("auto", "native") and has_native(backend) else ()
    _require_known(op, x, layout, needed_by, skip=0 if unbatched else 1, free=free)
    _require_known(op, k, "(co, ci/groups, kh, kw)", needed_by)
    shape = (*x.shape[:-3], x.shape[-1], *x.shape[-3:-1]) if channels_last else x.shape
    g = conv_geometry(
        (1, *shape) if unbatched else shape, k.shape, stride=stride, padding=padding,
        dilation=dilation, groups=groups, op=op,
    )  # fmt: skip
    ops = [x, k]
    if bias is not None:
        b = operand(backend, "bias", bias, 1, "(co,)")
        if b.shape != (g.co,):
            raise ValueError(
                f"{op}: bias has shape {b.shape} but K (shape {k.shape}) has {g.co} output "
                f"channels; bias must have shape ({g.co},)"
            )
        ops.append(b)
    if None in (g.h, g.w):
        _check_unknown_extent(op, backend, g, x, layout, algorithm,
                              result_dtype([o.dtype for o in ops]))  # fmt: skip
    return backend, g, ops, unbatched


def _check_unknown_extent(
    op: str, backend: ArrayBackend, g: ConvGeometry, x: Operand, layout: str, algorithm: str,
    dtype: str,
) -> None:  # fmt: skip
    """ValueError unless the ``native`` algorithm will run ``g``, whose h or w is unknown
    until run time: ``auto`` chooses it then where it can, but a native limit that the
    geometry may meet at run time (``native_limit`` sees the unknown extent) sends it to
    im2col, which needs the extent, and a wrong answer is never risked."""
    chosen = choose_algorithm(backend, g, dtype) if algorithm == "auto" else algorithm
    limit = native_limit(backend, g, dtype)
    if chosen == "native" and limit is None:
        return
    why = "" if limit is None else (
        f" (the {backend.name} backend's native kernel is declared wrong or missing for this "
        f"geometry, which it may meet at run time: {limit.key}: {limit.condition}; im2col, "
        "which runs instead, needs the extent)")  # fmt: skip
    axis = "h" if g.h is None else "w"
    needed_by = f"{op} (algorithm {chosen!r})" if limit is None else (
        f"{op} (algorithm 'im2col', run instead of {algorithm!r})")  # fmt: skip
    _refuse_unknown(op, x, layout, axis, needed_by, why)


def conv2d(
    X: object,
    K: object,
    bias: object = None,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    algorithm: str = "auto",
    spectrum_cache: SpectrumCache | None = None,
    data_format: str = "channels_first",
) -> Tensor:
    """2-D convolution (cross-correlation) as deep-learning frameworks define it.

    X is (n, ci, h, w) or one image (ci, h, w); K is (co, ci/groups, kh, kw); bias is (co,)
    or None. ``stride``, ``padding`` and ``dilation`` take an int or an (h, w) pair;
    ``padding`` also takes ``"valid"`` (none) and ``"same"`` (output size ceil(h/stride),
    the odd pixel after, as TensorFlow pads). The output is (n, co, oh, ow) with
    ``oh = floor((h + 2*ph - dh*(kh-1) - 1) / sh) + 1``, or (co, oh, ow) for one image.
    ``algorithm`` is ``"direct"``, ``"im2col"``, ``"native"`` (the framework's own
    convolution), ``"fourier"`` (overlap-save tiles, ``chanconv.fourier``) or
    ``"auto"``; see ``chanconv.algorithms``. All agree to rounding.
    ``spectrum_cache`` (a ``chanconv.fourier.SpectrumCache``) keeps the fourier
    algorithm's kernel spectrum between calls while K's contents are unchanged: for
    inference only, since no gradient reaches K through a kept spectrum.

    Args:
        X: The input: a batch (n, ci, h, w) or one image (ci, h, w); with
            ``data_format="channels_last"``, (n, h, w, ci) or (h, w, ci). A tensor of any
            supported framework or nested lists of numbers (which become a float32 tensor of
            the active backend). Inside a traced graph the batch n may be unknown, and h
            and w where the native algorithm runs (explicit, or ``auto``'s choice there).
        K: The kernel, shape (co, ci/groups, kh, kw), whatever ``data_format`` is.
        bias: None (the default) for no bias, or a (co,) vector added to every output
            pixel of each channel.
        stride: The step between windows: an int for both axes or an (sh, sw) pair, each
            at least 1.
        padding: Zeros added around the input: an int or a (ph, pw) pair added on both
            sides of each axis (not negative), ``"valid"`` (none) or ``"same"`` (output size
            ``ceil(h / sh)``; an odd total pads one more row or column at the bottom or
            right).
        dilation: The spacing between kernel taps: an int or a (dh, dw) pair, each at
            least 1.
        groups: The number of channel groups, at least 1, dividing both ci and co; input
            channels of group g meet only output channels of group g.
        algorithm: How to compute: ``"auto"`` (the default: the rule of
            ``chanconv.algorithms.choose_algorithm``, or the fastest measured one under
            ``set_autotune(True)``), ``"direct"``, ``"im2col"``, ``"native"`` (only on a
            backend with its own convolution; on a geometry the adapter declares its
            framework wrong for, im2col runs instead) or ``"fourier"``.
        spectrum_cache: A ``chanconv.fourier.SpectrumCache`` that keeps the fourier
            algorithm's kernel spectrum between calls while K's contents are unchanged,
            for inference only; None (the default) keeps nothing. Other algorithms ignore
            it, and so does a channels-last call.
        data_format: ``"channels_first"`` (the default: X and the output put channels
            before height and width) or ``"channels_last"`` (Keras's layout: X is
            (n, h, w, ci) and the output (n, oh, ow, co)). K keeps its layout either way.
            Where the native algorithm runs on an adapter with
            ``chanconv.protocol.NativeChannelsLast`` (TensorFlow), X goes to the
            framework's channels-last kernel unpermuted; elsewhere it is permuted.

    Returns:
        The output (n, co, oh, ow), or (co, oh, ow) for one image (channels last:
            (n, oh, ow, co) or (oh, ow, co)); a tensor of the framework (and array kind) of
            the tensor arguments, in their common floating dtype.

    Raises:
        TypeError: An argument is neither a tensor nor nested lists of real numbers, has a
            non-floating dtype, or tensors of two different frameworks are mixed; or
            ``stride``, ``dilation``, ``padding`` or ``groups`` has the wrong type.
        ValueError: A wrong rank or an empty tensor; channel counts that do not match
            (``groups`` included); a bias that is not (co,); a stride, dilation or group
            count below 1, a negative or unknown padding, or a kernel larger than the padded
            input; an unknown ``algorithm`` or ``data_format``, or ``"native"`` on a
            backend without its own convolution; a dimension unknown until run time that
            the algorithm needs (any but the batch, except h and w for ``native``), or an
            unknown extent that a strided ``"same"`` padding needs.

    Examples:
        >>> X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
        >>> K = [[[[0, 1], [2, 3]], [[1, 2], [3, 4]]]]
        >>> conv2d(X, K, padding=1, stride=2).shape
        (1, 2, 2)
    """
    if data_format != "channels_first":  # Keras's names; K keeps the book's layout
        return _conv2d_channels_last(X, K, bias, stride, padding, dilation, groups, algorithm,
                                     data_format)  # fmt: skip
    # A signature seen before needs no checks.
    key = _plan_key("channels_first", X, K, bias, stride, padding, dilation, groups, algorithm)
    plan = _lookup(key)
    if plan is not None:
        backend, g, dtype, unbatched, casts, algorithm = plan
        if bias is None and not (unbatched or casts):  # the common case, kept short
            y = convolve(backend, backend.asarray(X), backend.asarray(K), g, dtype, algorithm,
                         spectrum_cache)  # fmt: skip
            return backend.restore_kind(y, X)
        tensors = _planned_tensors(backend, dtype, casts, X, K, bias)
        return _run_conv2d(backend, g, dtype, unbatched, algorithm, tensors, X, spectrum_cache)

    check_algorithm(algorithm, None, "conv2d")
    backend, g, ops, unbatched = _conv_operands(
        "conv2d", X, K, bias, stride, padding, dilation, groups, None, algorithm
    )
    check_algorithm(algorithm, backend, "conv2d")
    dtype, tensors = unify_dtypes(backend, *ops)
    if key is not None and all(op.is_tensor for op in ops):
        # auto's choice depends on the backend and the geometry only: made once per plan.
        chosen = choose_algorithm(backend, g, dtype) if algorithm == "auto" else algorithm
        if algorithm == "auto" and autotune_enabled():
            try:
                x4 = backend.reshape(tensors[0], (1, g.ci, g.h, g.w)) if unbatched else tensors[0]
                chosen = tuned_algorithm(backend, x4, tensors[1], g, dtype)
            except Exception:  # symbolic (traced) tensors cannot be timed: keep the rule
                pass
        _remember(key, ops, (backend, g, dtype, unbatched, (), chosen))
    return _run_conv2d(backend, g, dtype, unbatched, algorithm, tensors, kind_source(*ops),
                       spectrum_cache)  # fmt: skip


def _run_conv2d(
    backend: ArrayBackend, g: ConvGeometry, dtype: str, unbatched: bool, algorithm: str,
    tensors: list[Tensor], like: object | None, spectrum_cache: SpectrumCache | None = None,
) -> Tensor:  # fmt: skip
    x = _with_batch(backend, tensors[0], g.input_shape[1:]) if unbatched else tensors[0]
    y = convolve(backend, x, tensors[1], g, dtype, algorithm, spectrum_cache)
    if len(tensors) == 3:
        y = y + backend.reshape(tensors[2], (1, g.co, 1, 1))
    if unbatched:
        y = _without_batch(backend, y, g.output_shape[1:])
    return _in_kind_of(backend, y, like)


def _with_batch(backend: ArrayBackend, x: Tensor, shape: tuple[int | None, ...]) -> Tensor:
    """One image of ``shape`` as a batch of one: a reshape, or where an extent is unknown
    until run time (no reshape can name it), a stack of one."""
    if None in shape:
        return backend.stack([x], axis=0)
    return backend.reshape(x, (1, *cast("tuple[int, ...]", shape)))


def _without_batch(backend: ArrayBackend, y: Tensor, shape: tuple[int | None, ...]) -> Tensor:
    if None in shape:
        return y[0, :, :, :]
    return backend.reshape(y, cast("tuple[int, ...]", shape))


def _conv2d_channels_last(
    X: object, K: object, bias: object, stride: IntPair, padding: Padding, dilation: IntPair,
    groups: int, algorithm: str, data_format: str,
) -> Tensor:  # fmt: skip
    """conv2d on channels-last X. Where the native algorithm runs (explicitly, or as
    ``auto``'s rule chooses it) on an adapter with ``NativeChannelsLast``, X goes to the
    framework's channels-last kernel as it is: no permute of X or of the result. A 1x1
    kernel at stride 1 with no padding and one group, where ``auto`` (or an explicit
    ``im2col``) would multiply matrices anyway, is on every backend one matmul of X's
    pixels (n*h*w, ci) by K's (ci, co): channels last is that matmul's own layout.
    Otherwise X is permuted to channels first and the result back. Under
    ``set_autotune(True)``, ``auto`` takes the permuted path, whose channels-first
    algorithms the tuner measures."""
    check_data_format(data_format, "conv2d")
    direct_ok = algorithm in ("native", "im2col") or (
        algorithm == "auto" and not autotune_enabled()
    )
    # As conv2d's plans: a signature seen before on this path needs no checks.
    key = _plan_key(data_format, X, K, bias, stride, padding, dilation, groups, algorithm)
    plan = _lookup(key) if direct_ok else None
    if plan is not None and plan[5] != "permute":
        backend, g, dtype, unbatched, casts, route = plan
        tensors = _planned_tensors(backend, dtype, casts, X, K, bias)
        return _run_channels_last(backend, g, unbatched, tensors, X, route)
    backend, like = _channels_last_call("conv2d", data_format, X, K, bias)
    if direct_ok and plan is None:
        backend, g, ops, unbatched = _conv_operands(
            "conv2d", X, K, bias, stride, padding, dilation, groups, None, algorithm,
            channels_last=True,
        )  # fmt: skip
        dtype, tensors = unify_dtypes(backend, *ops)
        chosen = choose_algorithm(backend, g, dtype) if algorithm == "auto" else algorithm
        route = "permute"
        if (chosen == "native" and has_native_channels_last(backend)
                and native_limit(backend, g, dtype) is None):  # fmt: skip
            route = "native"
        elif chosen == "im2col" and g.pointwise and g.groups == 1 and None not in (g.h, g.w):
            route = "pointwise"
        _remember(key, ops, (backend, g, dtype, unbatched, (), route))
        if route != "permute":
            return _run_channels_last(backend, g, unbatched, tensors, kind_source(*ops), route)
    x = _from_channels_last(backend, "X", X)
    y = conv2d(x, K, bias, stride=stride, padding=padding, dilation=dilation, groups=groups,
               algorithm=algorithm)  # fmt: skip
    return _to_channels_last(backend, y, like)


def _run_channels_last(
    backend: ArrayBackend, g: ConvGeometry, unbatched: bool, tensors: list[Tensor],
    like: object | None, route: str,
) -> Tensor:  # fmt: skip
    """The native algorithm, or the pointwise matmul (``route``), on channels-last X,
    checked and converted: no permute of X or of the result."""
    _, ci, h, w = g.input_shape
    if route == "pointwise":  # (pixels, ci) @ (ci, co); unbatched X is pixels already
        k = backend.permute_dims(backend.reshape(tensors[1], (g.co, ci)), (1, 0))
        y = backend.matmul(backend.reshape(tensors[0], (-1, ci)), k)
        if len(tensors) == 3:
            y = y + tensors[2]
        shape = (h, w, g.co) if unbatched else (-1, h, w, g.co)
        return _in_kind_of(backend, backend.reshape(y, shape), like)
    x = _with_batch(backend, tensors[0], (h, w, ci)) if unbatched else tensors[0]
    y = convolve_native_channels_last(backend, x, tensors[1], g)
    if len(tensors) == 3:  # (co,) broadcasts over the last axis
        y = y + tensors[2]
    if unbatched:
        y = _without_batch(backend, y, (g.oh, g.ow, g.co))
    return _in_kind_of(backend, y, like)


def conv2d_vjp(
    X: object,
    K: object,
    dY: object,
    *,
    bias: object = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    data_format: str = "channels_first",
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The gradients (dX, dK, dbias) of ``sum(conv2d(X, K, bias, ...) * dY)``: the
    backward pass for backends without autograd (NumPy), written against the protocol and
    so available on every backend. ``dbias`` is None when ``bias`` is None (its value does
    not enter the gradients; only its presence does).

    Args:
        X: The forward pass's input, (n, ci, h, w) or one image (ci, h, w) (channels
            last: (n, h, w, ci) or (h, w, ci)); a tensor or nested lists of numbers.
        K: The forward pass's kernel, shape (co, ci/groups, kh, kw).
        dY: The gradient of the loss with respect to the forward output: the shape
            ``conv2d(X, K, ...)`` returns with the same settings and ``data_format``.
        bias: None (the default) or the forward pass's (co,) bias; only whether it is
            given matters.
        stride: The forward pass's stride: an int or an (sh, sw) pair.
        padding: The forward pass's padding: an int, a (ph, pw) pair, ``"valid"`` or
            ``"same"``.
        dilation: The forward pass's dilation: an int or a (dh, dw) pair.
        groups: The forward pass's number of channel groups.
        data_format: ``"channels_first"`` (the default) or ``"channels_last"``, as for
            ``conv2d``: it applies to X, dY and dX; K and dK keep the (co, ci/groups, kh,
            kw) layout.

    Returns:
        The tuple (dX, dK, dbias): dX shaped as X, dK as K, and dbias a (co,) vector, or
            None when ``bias`` is None. Tensors of the framework (and array kind) of the
            tensor arguments, in their common floating dtype.

    Raises:
        TypeError: As ``conv2d``: an argument that is not a tensor or nested lists of real
            numbers, a non-floating dtype, mixed frameworks, or a setting of the wrong type.
        ValueError: As ``conv2d`` for X, K, bias and the settings; or dY does not have
            the shape of ``conv2d``'s output.

    Examples:
        Y = 2 X with a 1x1 kernel [[2]]: dX is 2 dY, dK the sum of X times dY.

        >>> dX, dK, dbias = conv2d_vjp([[[1, 2], [3, 4]]], [[[[2]]]], [[[1, 1], [1, 1]]],
        ...                            bias=[0])
        >>> dX.tolist(), dK.tolist(), dbias.tolist()
        ([[[2.0, 2.0], [2.0, 2.0]]], [[[[10.0]]]], [4.0])
    """
    if data_format != "channels_first":  # X, dY and dX channels-last; K and dK as always
        backend, like = _channels_last_call("conv2d_vjp", data_format, X, K, bias, dY)
        x, dy = _from_channels_last(backend, "X", X), _from_channels_last(backend, "dY", dY)
        dx, dk, db = conv2d_vjp(x, K, dy, bias=bias, stride=stride, padding=padding,
                                dilation=dilation, groups=groups)  # fmt: skip
        return _to_channels_last(backend, dx, like), _in_kind_of(backend, dk, like), (
            None if db is None else _in_kind_of(backend, db, like))  # fmt: skip
    backend, g, ops, unbatched = _conv_operands(
        "conv2d_vjp", X, K, bias, stride, padding, dilation, groups, {"dY": dY}
    )
    expected = g.output_shape[1:] if unbatched else g.output_shape
    dy = operand(backend, "dY", dY, len(expected), "the output's shape")
    if len(dy.shape) != len(expected) or any(
        d != e and None not in (d, e) for d, e in zip(dy.shape, expected, strict=True)
    ):
        raise ValueError(
            f"conv2d_vjp: dY has shape {dy.shape} but conv2d's output has shape {expected}"
        )
    dtype, tensors = unify_dtypes(backend, *ops, dy)
    x, dyt = tensors[0], tensors[-1]
    if unbatched:
        x, dyt = (
            backend.reshape(x, (1, *g.input_shape[1:])),
            backend.reshape(dyt, (1, *g.output_shape[1:])),
        )
    dx, dk = convolve_vjp(backend, x, tensors[1], dyt, g, dtype)
    if unbatched:
        dx = backend.reshape(dx, g.input_shape[1:])
    dbias = backend.sum(dyt, axis=(0, 2, 3)) if bias is not None else None
    like = kind_source(*ops, dy)
    if like is not None:
        dx, dk = backend.restore_kind(dx, like), backend.restore_kind(dk, like)
        dbias = None if dbias is None else backend.restore_kind(dbias, like)
    return dx, dk, dbias


DATA_FORMATS = ("channels_first", "channels_last")


def check_data_format(data_format: object, op: str) -> None:
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"{op}: data_format must be 'channels_first' (X (n, ci, h, w)) or "
            f"'channels_last' (X (n, h, w, ci)), not {data_format!r}"
        )


def _channels_last_call(
    op: str, data_format: str, *arguments: object
) -> tuple[ArrayBackend, object | None]:
    """Check ``data_format``; the backend, and the caller's first tensor (whose kind the
    results take)."""
    check_data_format(data_format, op)
    backend = pick_backend(**{f"arg{i}": a for i, a in enumerate(arguments)})
    like = next((a for a in arguments if a is not None and backend_for(a) is not None), None)
    return backend, like


def _from_channels_last(backend: ArrayBackend, name: str, value: object) -> Tensor:
    """(n, h, w, c) or (h, w, c) as (n, c, h, w) or (c, h, w), a view where the framework
    has them."""
    x = operand(backend, name, value, (3, 4), "(n, h, w, ci) or (h, w, ci)")
    return backend.permute_dims(x.tensor, (0, 3, 1, 2) if len(x.shape) == 4 else (2, 0, 1))


def _to_channels_last(backend: ArrayBackend, y: Tensor, like: object | None) -> Tensor:
    axes = (0, 2, 3, 1) if len(backend.shape(y)) == 4 else (1, 2, 0)
    return _in_kind_of(backend, backend.permute_dims(y, axes), like)
