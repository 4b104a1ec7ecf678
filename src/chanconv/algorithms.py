"""2-D convolution (cross-correlation, as in deep learning) with stride, padding, dilation,
groups, bias and batches, by three algorithms written once against the protocol.

* ``direct``: the sum over the kh*kw kernel offsets of a 1x1 convolution of the shifted
  (strided, dilated) input window, each a matmul over channels: the section's 1x1 insight,
  generalized. Extra memory: one window.
* ``im2col``: all windows unfolded into one matrix and multiplied once (the section's
  exercise 6), in tiles of output rows and images so the unfolded matrix never exceeds
  :func:`im2col_limit` bytes (:func:`set_im2col_limit`).
* ``native``: the framework's own convolution, through the optional protocol extension
  :class:`chanconv.protocol.NativeConv2d`.

``auto`` (see :func:`choose_algorithm`) picks one of them.
"""

from __future__ import annotations

from chanconv.geometry import ConvGeometry
from chanconv.protocol import ArrayBackend, NativeConv2d, Tensor, ZerosLike

ALGORITHMS = ("auto", "direct", "im2col", "native")
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}

_im2col_limit = 64 * 2**20
#: im2col's largest tile, whatever the limit: about a last-level cache, so the unfolded
#: columns are still in cache when the matmul reads them. Tiles of 2 to 64 MiB ran the
#: benchmark layers within the machine's noise of each other; the smallest that keeps the
#: matmuls large costs least memory.
CACHE_TILE_BYTES = 8 * 2**20


def im2col_limit() -> int:
    """Bytes the im2col algorithm may spend on its unfolded matrix at once (default 64 MiB).

    Examples:
        >>> im2col_limit() == 64 * 2**20
        True
    """
    return _im2col_limit


def set_im2col_limit(nbytes: int) -> int:
    """Bound im2col's unfolded matrix by ``nbytes`` from now on; returns the old bound.

    Examples:
        >>> old = set_im2col_limit(2**20)  # 1 MiB: larger problems are tiled
        >>> im2col_limit()
        1048576
        >>> set_im2col_limit(old)
        1048576
    """
    global _im2col_limit
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
        raise ValueError(f"the im2col limit must be a positive number of bytes, not {nbytes!r}")
    previous, _im2col_limit = _im2col_limit, nbytes
    return previous


_native_by_type: dict[type, bool] = {}


def has_native(backend: ArrayBackend) -> bool:
    """Whether the backend implements :class:`NativeConv2d`, cached per adapter class: a
    runtime protocol check costs tens of microseconds, more than a small convolution."""
    kind = type(backend)
    found = _native_by_type.get(kind)
    if found is None:
        found = _native_by_type[kind] = isinstance(backend, NativeConv2d)
    return found


def choose_algorithm(backend: ArrayBackend, g: ConvGeometry) -> str:
    """The ``auto`` rule. A 1x1 kernel with stride 1 and no padding is one matrix
    multiplication over channels, which im2col does without unfolding anything: chosen
    unless the adapter says its matmul is slower than its convolution
    (``pointwise_matmul = False``: MXNet 1.9's bundled BLAS runs at half the SGEMM peak,
    its MKL-DNN convolution does not). Otherwise the framework's own convolution where
    the backend has one (tuned kernels, and a fused gradient); otherwise im2col, whose
    tiles keep its memory bounded and whose large matmuls beat direct's kh*kw small ones
    on every benchmark workload (docs/performance.md)."""
    native = has_native(backend)
    if g.pointwise and (not native or getattr(backend, "pointwise_matmul", True)):
        return "im2col"
    return "native" if native else "im2col"


def spread_axis(backend: ArrayBackend, t: Tensor, axis: int, step: int, dtype: str) -> Tensor:
    """Insert step-1 zeros between consecutive entries along ``axis`` (2 or 3), as a
    strided convolution's gradient needs: stack with zeros, then merge the two axes."""
    if step == 1:
        return t
    shape = backend.shape(t)
    zeros = zeros_of(backend, t, shape, dtype)
    spread = backend.stack([t] + [zeros] * (step - 1), axis=axis + 1)
    merged = (*_batch_free(shape[:axis]), shape[axis] * step, *shape[axis + 1 :])
    flat = backend.reshape(spread, merged)
    keep = (shape[axis] - 1) * step + 1
    return flat[:, :, :keep, :] if axis == 2 else flat[:, :, :, :keep]


def _batch_free(shape: tuple[int | None, ...]) -> tuple[int, ...]:
    """``shape`` for a reshape: an unknown (``None``) leading batch becomes ``-1``."""
    return tuple(-1 if d is None else d for d in shape)


def zeros_of(backend: ArrayBackend, t: Tensor, shape: tuple[int, ...], dtype: str) -> Tensor:
    """Zeros of ``t``'s ``shape``: ``zeros`` where the shape is known, else the backend's
    :class:`ZerosLike` (a batch of unknown size inside a traced graph)."""
    if None not in shape:
        return backend.zeros(shape, dtype)
    if not isinstance(backend, ZerosLike):
        raise ValueError(
            f"a tensor of shape {shape} has a dimension unknown until run time; the "
            f"{backend.name} backend cannot make zeros of it (it lacks zeros_like)"
        )
    return backend.zeros_like(t)


def pad_axis(
    backend: ArrayBackend, t: Tensor, before: int, after: int, axis: int, dtype: str
) -> Tensor:
    """Zero-pad ``t`` by ``before`` and ``after`` entries along ``axis``: by concatenation,
    which every framework differentiates, with no protocol op beyond ``zeros`` and
    ``concat``."""
    if not before and not after:
        return t
    shape = list(backend.shape(t))
    parts = []
    if None in shape:  # a batch of unknown size: zeros shaped like one slice of t
        zeros = zeros_of(backend, _first_slice(t, axis), (*shape[:axis], 1), dtype)
        parts = [zeros] * before + [t] + [zeros] * after
        return backend.concat(parts, axis=axis)
    if before:
        parts.append(backend.zeros((*shape[:axis], before, *shape[axis + 1 :]), dtype))
    parts.append(t)
    if after:
        parts.append(backend.zeros((*shape[:axis], after, *shape[axis + 1 :]), dtype))
    return backend.concat(parts, axis=axis)


def _first_slice(t: Tensor, axis: int) -> Tensor:
    return t[:, :, :1, :] if axis == 2 else t[:, :, :, :1]


def pad_input(backend: ArrayBackend, x: Tensor, g: ConvGeometry, dtype: str) -> Tensor:
    """x zero-padded by the geometry's (top, bottom, left, right)."""
    pt, pb, pl, pr = g.pads
    return pad_axis(backend, pad_axis(backend, x, pt, pb, 2, dtype), pl, pr, 3, dtype)


def window(x: Tensor, g: ConvGeometry, i: int, j: int, rows: tuple[int, int]) -> Tensor:
    """The input pixels that kernel offset (i, j) meets for output rows [rows), all columns:
    (a, b, len(rows), ow), strided by the stride and shifted by the dilation.

    Like every slice in the core, it names all four axes and stops within them: the Array
    API standard leaves both implicit trailing axes and out-of-bounds stops unspecified."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    r0, c0 = i * dh + rows[0] * sh, j * dw
    r1, c1 = r0 + (rows[1] - rows[0] - 1) * sh + 1, c0 + (g.ow - 1) * sw + 1
    return x[:, :, r0:r1:sh, c0:c1:sw]


def _channels_first(backend: ArrayBackend, x: Tensor) -> Tensor:
    """(n, ci, h, w) -> (ci, n, h, w): with the batch beside the pixels, one matmul covers
    every image at once, (co, ci*kh*kw) @ (ci*kh*kw, n*oh*ow), instead of n small ones."""
    return backend.permute_dims(x, (1, 0, 2, 3))


def _direct(backend: ArrayBackend, xp: Tensor, k: Tensor, g: ConvGeometry) -> Tensor:
    G, cig, cog = g.groups, g.ci // g.groups, g.co // g.groups
    xc, columns = _channels_first(backend, xp), -1  # n*oh*ow, n maybe unknown
    y: Tensor = None
    for i in range(g.kh):
        for j in range(g.kw):
            xs = backend.reshape(window(xc, g, i, j, (0, g.oh)), (G, cig, columns))
            ks = backend.reshape(k[:, :, i, j], (G, cog, cig))
            term = backend.matmul(ks, xs)  # (G, cog, n*oh*ow)
            y = term if y is None else y + term
    return _channels_first(backend, backend.reshape(y, (g.co, -1, g.oh, g.ow)))


def _pointwise(backend: ArrayBackend, x: Tensor, k: Tensor, g: ConvGeometry) -> Tensor:
    """1x1, stride 1, unpadded: (G, cog, cig) @ (n, G, cig, h*w), no copy of the input."""
    G, cig, cog = g.groups, g.ci // g.groups, g.co // g.groups
    xs = backend.reshape(x, (-1, G, cig, g.h * g.w))
    y = backend.matmul(backend.reshape(k, (G, cog, cig)), xs)
    return backend.reshape(y, (-1, g.co, g.oh, g.ow))


def _im2col_tile(
    backend: ArrayBackend, xc: Tensor, k2: Tensor, g: ConvGeometry, rows: tuple[int, int]
) -> Tensor:
    """Output rows [rows) of ``n`` images from the channels-first padded input
    (ci, n, hp, wp): one matmul batched over the groups,
    (G, co/G, ci/G*kh*kw) @ (G, ci/G*kh*kw, n*rows*ow); returns (co, n, rows, ow)."""
    G, cig, tr = g.groups, g.ci // g.groups, rows[1] - rows[0]
    windows = [window(xc, g, i, j, rows) for i in range(g.kh) for j in range(g.kw)]
    # (ci, kh*kw, n, tr, ow): channel-major, then offset, matching K's memory order.
    columns = backend.reshape(backend.stack(windows, axis=1), (G, cig * g.kh * g.kw, -1))
    return backend.reshape(backend.matmul(k2, columns), (g.co, -1, tr, g.ow))


def _im2col(backend: ArrayBackend, x: Tensor, k: Tensor, g: ConvGeometry, dtype: str) -> Tensor:
    if g.pointwise:
        return _pointwise(backend, x, k, g)
    G, xc = g.groups, _channels_first(backend, pad_input(backend, x, g, dtype))
    k2 = backend.reshape(k, (G, g.co // G, (g.ci // G) * g.kh * g.kw))
    row_bytes = g.ci * g.kh * g.kw * g.ow * ITEMSIZE[dtype]  # one output row of one image
    budget = min(_im2col_limit, CACHE_TILE_BYTES)
    per_strip = max(1, budget // row_bytes)
    strips = [(r0, min(r0 + per_strip, g.oh)) for r0 in range(0, g.oh, per_strip)]
    if g.n is None:
        # A batch of unknown size (inside a traced graph): the bound holds per image, the
        # strips of output rows span the whole batch.
        parts = [_im2col_tile(backend, xc, k2, g, rows) for rows in strips]
        y = parts[0] if len(parts) == 1 else backend.concat(parts, axis=2)
    elif g.n * g.oh * row_bytes <= budget:
        y = _im2col_tile(backend, xc, k2, g, (0, g.oh))
    elif g.oh * row_bytes <= budget:  # whole images fit: tile the batch
        per_tile = budget // (g.oh * row_bytes)
        y = backend.concat(
            [_im2col_tile(backend, xc[:, b0 : min(b0 + per_tile, g.n), :, :], k2, g, (0, g.oh))
             for b0 in range(0, g.n, per_tile)],
            axis=1,
        )  # fmt: skip
    else:  # tile each image by output rows
        images = []
        for b in range(g.n):
            image = xc[:, b : b + 1, :, :]
            parts = [_im2col_tile(backend, image, k2, g, rows) for rows in strips]
            images.append(parts[0] if len(parts) == 1 else backend.concat(parts, axis=2))
        y = images[0] if g.n == 1 else backend.concat(images, axis=1)
    return _channels_first(backend, y)


def check_algorithm(algorithm: str, backend: ArrayBackend | None, op: str) -> None:
    """ValueError unless ``algorithm`` is one of :data:`ALGORITHMS` and, given a backend,
    one it can run (``native`` needs :class:`NativeConv2d`)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"{op}: unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}"
        )
    if algorithm == "native" and backend is not None and not has_native(backend):
        raise ValueError(
            f"{op}: algorithm='native' needs a backend with its own convolution; the "
            f"{backend.name} backend has none: use 'direct', 'im2col' or 'auto'"
        )


def convolve(
    backend: ArrayBackend, x: Tensor, k: Tensor, g: ConvGeometry, dtype: str, algorithm: str
) -> Tensor:
    """(n, ci, h, w) * (co, ci/groups, kh, kw) -> (n, co, oh, ow) on already checked and
    converted tensors of one dtype, by an ``algorithm`` that :func:`check_algorithm` has
    accepted for this backend."""
    if algorithm == "auto":
        algorithm = choose_algorithm(backend, g)
    if algorithm == "native":
        padding = g.symmetric_padding
        if padding is None:  # asymmetric ("same" with an even extent): pad here
            x, padding = pad_input(backend, x, g, dtype), (0, 0)
        return backend.conv2d_native(  # type: ignore[attr-defined]
            x, k, stride=g.stride, padding=padding, dilation=g.dilation, groups=g.groups
        )
    if algorithm == "direct":
        return _direct(backend, pad_input(backend, x, g, dtype), k, g)
    return _im2col(backend, x, k, g, dtype)
