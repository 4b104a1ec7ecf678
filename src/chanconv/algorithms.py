"""2-D convolution (cross-correlation, as in deep learning) with stride, padding, dilation,
groups, bias and batches, by algorithms written once against the protocol.

* ``direct``: the sum over the kh*kw kernel offsets of a 1x1 convolution of the shifted
  (strided, dilated) input window, each a matmul over channels: the section's 1x1 insight,
  generalized. Extra memory: one window.
* ``im2col``: all windows unfolded into one matrix and multiplied once (the section's
  exercise 6), in tiles of output rows and images so the unfolded matrix never exceeds
  [`im2col_limit`][chanconv.im2col_limit] bytes ([`set_im2col_limit`][chanconv.set_im2col_limit]).
* ``native``: the framework's own convolution, through the optional protocol extension
  [`chanconv.protocol.NativeConv2d`][chanconv.protocol.NativeConv2d].
* ``fourier``: overlap-save tiles whose small DFTs are matmuls by precomputed cosine and
  sine matrices, and per-frequency channel mixing: fewer multiplications for large
  kernels (``chanconv.fourier``).

``auto`` (see ``choose_algorithm``) picks one of them.

Every algorithm runs the *canonical* geometry (``chanconv.geometry.canonical_geometry``):
an axis whose output extent is 1 is cropped to its one window and run at stride 1. Where the
adapter declares its framework's kernel wrong or missing for a geometry
([`NativeLimits`][chanconv.protocol.NativeLimits]), ``auto`` does not
choose ``native`` and an explicit ``native`` runs ``im2col`` instead: chanconv never returns a
result it knows to be wrong (see Known framework bugs).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, cast

from chanconv.geometry import ConvGeometry, canonical_geometry
from chanconv.protocol import (
    ArrayBackend,
    FourierCalibration,
    InPlaceWrites,
    NativeChannelsLast,
    NativeConv2d,
    NativeLimits,
    PointwiseHint,
    Tensor,
    ZerosLike,
    implements,
)
from chanconv.workarounds import NativeLimit

if TYPE_CHECKING:
    from chanconv.fourier import SpectrumCache

ALGORITHMS = ("auto", "direct", "im2col", "native", "fourier")
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}

_im2col_limit = 64 * 2**20
#: im2col's largest tile, whatever the limit: about a last-level cache, so the unfolded
#: columns are still in cache when the matmul reads them. Tiles of 2 to 64 MiB ran the
#: benchmark layers within the machine's noise of each other; the smallest that keeps the
#: matmuls large costs least memory.
CACHE_TILE_BYTES = 8 * 2**20


def im2col_limit() -> int:
    """Bytes the im2col algorithm may spend on its unfolded matrix at once (default 64 MiB).

    The fourier algorithm's frequency-domain chunks keep within the same bound.

    Returns:
        The current bound in bytes, as last set by
            [`set_im2col_limit`][chanconv.set_im2col_limit].

    Examples:
        >>> im2col_limit() == 64 * 2**20
        True
    """
    return _im2col_limit


def set_im2col_limit(nbytes: int) -> int:
    """Bound im2col's unfolded matrix by ``nbytes`` from now on; returns the old bound.

    The bound is process-wide (not per thread) and also bounds the fourier algorithm's
    chunks; im2col's tiles never exceed 8 MiB (about a last-level cache) whatever it is.

    Args:
        nbytes: The new bound in bytes, a positive int.

    Returns:
        The previous bound in bytes, to restore it with.

    Raises:
        ValueError: ``nbytes`` is not a positive int (a bool is refused too).

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


def has_native(backend: ArrayBackend) -> bool:
    """Whether the backend implements ``NativeConv2d`` (a cached check)."""
    return implements(backend, NativeConv2d)


def native_limit(backend: ArrayBackend, g: ConvGeometry, dtype: str) -> NativeLimit | None:
    """The first of the backend's declared ``chanconv.workarounds.NativeLimit`` that
    the canonical form of ``g`` in ``dtype`` meets, or None (also for a backend with no
    native convolution). Not remembered in a table: inside ``torch.compile`` a store keyed
    on a geometry made during tracing cannot be replayed, and the check costs a predicate
    or two per declared limit."""
    if not has_native(backend) or not implements(backend, NativeLimits):
        return None
    c = canonical_geometry(g)
    limits = cast(NativeLimits, backend).native_limits()
    found: NativeLimit | None = next((lim for lim in limits if lim.applies(c, dtype)), None)
    return found


class InPlaceBackend(ArrayBackend, InPlaceWrites, Protocol):
    """An adapter with the ``InPlaceWrites`` extension."""


def has_inplace(backend: ArrayBackend) -> bool:
    """Whether the backend implements ``InPlaceWrites`` (a cached check)."""
    return implements(backend, InPlaceWrites)


#: ``auto`` picks ``fourier`` only when the direct multiplication count is this many times
#: the cost model's figure for fourier (an adapter may declare its own,
#: ``chanconv.protocol.FourierCalibration``): the model counts multiplications and
#: copies at full speed, and fourier reached about a third of that speed against im2col's
#: on the benchmark machine (docs/performance.md).
FOURIER_MARGIN = 3.0
#: The margin for a backend with its own convolution and no declared calibration: torch's
#: (single-threaded) beat fourier with its kernel transform on the d2l 5x5 layer, where
#: the model's ratio is 4.5, so fourier must promise more than that.
FOURIER_MARGIN_NATIVE = 6.0
#: ... and only above this many direct multiplications: fourier makes dozens of protocol
#: calls per chunk, which small convolutions cannot amortise.
FOURIER_MIN_MULTIPLICATIONS = 10**8


def fourier_margin(backend: ArrayBackend) -> float:
    """The backend's declared ``FourierCalibration`` margin, else ``FOURIER_MARGIN``
    (``FOURIER_MARGIN_NATIVE`` for a backend with its own convolution)."""
    if implements(backend, FourierCalibration):
        return float(cast(FourierCalibration, backend).fourier_margin)
    return FOURIER_MARGIN_NATIVE if has_native(backend) else FOURIER_MARGIN


def fourier_wins(backend: ArrayBackend, g: ConvGeometry) -> bool:
    """The cost model's verdict: fourier for large convolutions whose direct count of
    multiplications is ``fourier_margin`` times fourier's (large kernels, many channels)."""
    if g.n is None or None in (g.h, g.w):  # unknown until run time (traced graph): no cost
        return False
    direct = g.n * g.co * g.oh * g.ow * (g.ci // g.groups) * g.kh * g.kw
    if g.pointwise or direct < FOURIER_MIN_MULTIPLICATIONS:
        return False
    from chanconv.fourier import MOVE_WEIGHT, fourier_cost, fourier_plan

    plan = fourier_plan(g, 4, _im2col_limit)
    multiplications, moved = fourier_cost(g, plan.th, plan.tw)
    return direct >= fourier_margin(backend) * (multiplications + MOVE_WEIGHT * moved)


def choose_algorithm(backend: ArrayBackend, g: ConvGeometry, dtype: str = "float32") -> str:
    """The ``auto`` rule. A 1x1 kernel with stride 1 and no padding is one matrix
    multiplication over channels, which im2col does without unfolding anything: chosen
    unless the adapter says its matmul is slower than its convolution
    ([PointwiseHint][chanconv.protocol.PointwiseHint] ``pointwise_matmul = False``:
    MXNet 1.9's bundled BLAS runs at half the SGEMM peak, its MKL-DNN convolution does
    not). Otherwise the framework's own convolution where
    the backend has one (tuned kernels, and a fused gradient); otherwise im2col, whose
    tiles keep its memory bounded and whose large matmuls beat direct's kh*kw small ones
    on every benchmark workload (docs/performance.md). Never ``native`` where the adapter
    declares its kernel wrong or missing (``native_limit``). Before either, ``fourier``
    where its cost model says it wins by the backend's margin (``fourier_wins``).

    An extent unknown until run time (inside a traced graph) leaves ``native``, the one
    algorithm that needs no extent, where the backend can run it; else ``im2col``, which
    ``chanconv.operations`` then refuses by name."""
    native = has_native(backend) and native_limit(backend, g, dtype) is None
    if None in (g.h, g.w):
        return "native" if native else "im2col"
    if canonical_geometry(g).pointwise and (not native or pointwise_matmul(backend)):
        return "im2col"
    if fourier_wins(backend, g):
        return "fourier"
    return "native" if native else "im2col"


def pointwise_matmul(backend: ArrayBackend) -> bool:
    """The adapter's [PointwiseHint][chanconv.protocol.PointwiseHint], True without one."""
    if not implements(backend, PointwiseHint):
        return True
    return bool(cast(PointwiseHint, backend).pointwise_matmul)


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
    ``ZerosLike`` (a batch of unknown size inside a traced graph)."""
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


#: A tile of the unfolded matrix: images [b0, b1) and output rows [r0, r1).
Tile = tuple[int, int, int, int]


def im2col_tiles(g: ConvGeometry, dtype: str) -> list[Tile]:
    """The tiles im2col works in: all images at once, else whole images, else strips of
    output rows of one image, each unfolding to at most ``min(limit, CACHE_TILE_BYTES)``."""
    n = g.batch("im2col's tiles")
    row_bytes = g.ci * g.kh * g.kw * g.ow * ITEMSIZE[dtype]  # one output row of one image
    budget = min(_im2col_limit, CACHE_TILE_BYTES)
    if n * g.oh * row_bytes <= budget:
        return [(0, n, 0, g.oh)]
    if g.oh * row_bytes <= budget:
        per_tile = budget // (g.oh * row_bytes)
        return [(b0, min(b0 + per_tile, n), 0, g.oh) for b0 in range(0, n, per_tile)]
    per_strip = max(1, budget // row_bytes)
    return [(b, b + 1, r0, min(r0 + per_strip, g.oh))
            for b in range(n) for r0 in range(0, g.oh, per_strip)]  # fmt: skip


_buffers = threading.local()


def scratch(backend: InPlaceBackend, slot: str, size: int, dtype: str) -> Tensor:
    """A flat buffer of at least ``size`` elements, kept per thread, adapter class, slot and
    dtype and reused by every later call: a fresh buffer of megabytes costs a page fault
    per 4 KiB on first touch, as much as the unfolding itself. It grows to the largest tile
    seen, which ``im2col_tiles`` bounds, so the bound on extra memory holds."""
    cache: dict[tuple[type, str, str], Tensor] = _buffers.__dict__.setdefault("cache", {})
    key = (type(backend), slot, dtype)
    buffer: Tensor = cache.get(key)
    held = 0 if buffer is None else backend.shape(buffer)[0]
    # Also reallocated when a lowered im2col limit leaves it larger than the limit allows.
    if held < size or held * ITEMSIZE[dtype] > max(size * ITEMSIZE[dtype], _im2col_limit):
        cache.pop(key, None)  # the old one is freed before the larger is allocated
        buffer = cache[key] = backend.empty((size,), dtype)
    return buffer[:size]


def valid_span(start: int, stop: int, offset: int, step: int, size: int) -> tuple[int, int]:
    """The outputs [a, b) within [start, stop) whose input index ``o * step + offset``
    falls inside [0, size); the others meet padding."""
    a = max(start, -(offset // step) if offset < 0 else 0)  # ceil(-offset / step)
    b = min(stop, (size - 1 - offset) // step + 1) if size - 1 - offset >= 0 else start
    return a, max(a, b)


def window_spans(
    g: ConvGeometry, tile: Tile
) -> Iterator[tuple[int, int, tuple[int, int], tuple[int, int]]]:
    """For each kernel offset (i, j) of a tile, its valid output rows and columns (each
    [a, b), rows relative to the tile)."""
    _, _, r0, r1 = tile
    (sh, sw), (dh, dw) = g.stride, g.dilation
    pt, _, pl, _ = g.pads
    for i in range(g.kh):
        ra, rb = valid_span(r0, r1, i * dh - pt, sh, g.h)
        for j in range(g.kw):
            ca, cb = valid_span(0, g.ow, j * dw - pl, sw, g.w)
            yield i, j, (ra - r0, rb - r0), (ca, cb)


def source_window(
    x: Tensor, g: ConvGeometry, i: int, j: int, tile: Tile, rows: tuple[int, int],
    cols: tuple[int, int],
) -> Tensor:  # fmt: skip
    """The unpadded input pixels (nb, channels, rows, cols) that offset (i, j) meets in the
    valid part of a tile."""
    b0, b1, r0, _ = tile
    (sh, sw), (dh, dw) = g.stride, g.dilation
    pt, _, pl, _ = g.pads
    y0, x0 = (r0 + rows[0]) * sh + i * dh - pt, cols[0] * sw + j * dw - pl
    y1, x1 = y0 + (rows[1] - rows[0] - 1) * sh + 1, x0 + (cols[1] - cols[0] - 1) * sw + 1
    return x[b0:b1, :, y0:y1:sh, x0:x1:sw]


def unfold_into(
    backend: InPlaceBackend, x: Tensor, g: ConvGeometry, tile: Tile, cols: Tensor
) -> None:
    """Every window of a tile written into ``cols`` (ci, kh, kw, nb, tr, ow) from the
    unpadded input, the part that meets padding set to zero. On one thread: a thread pool
    over channel slices was measured slower (the d2l layer on NumPy, one run on a loaded
    2-core machine: 50 s with two threads, 21 s with one), BLAS's worker threads spinning
    on both cores for a while after each matmul."""
    tr = tile[3] - tile[2]
    for i, j, (ra, rb), (ca, cb) in window_spans(g, tile):
        dst = cols[:, i, j]  # (ci, nb, tr, ow)
        if ra >= rb or ca >= cb:
            backend.write(dst, 0.0)
            continue
        if ra > 0:
            backend.write(dst[:, :, :ra], 0.0)
        if rb < tr:
            backend.write(dst[:, :, rb:], 0.0)
        if ca > 0:
            backend.write(dst[:, :, ra:rb, :ca], 0.0)
        if cb < g.ow:
            backend.write(dst[:, :, ra:rb, cb:], 0.0)
        src = source_window(x, g, i, j, tile, (ra, rb), (ca, cb))
        backend.write(dst[:, :, ra:rb, ca:cb], backend.permute_dims(src, (1, 0, 2, 3)))


def _im2col_inplace(
    backend: InPlaceBackend, x: Tensor, k: Tensor, g: ConvGeometry, dtype: str
) -> Tensor:
    """im2col with no padded copy and no joins: each tile unfolds into one reused buffer
    and multiplies straight into its slice of the (co, n, oh, ow) output."""
    G, K = g.groups, (g.ci // g.groups) * g.kh * g.kw
    k2 = backend.reshape(k, (G, g.co // G, K))
    y = backend.empty((g.co, g.batch("im2col in place"), g.oh, g.ow), dtype)
    for tile in im2col_tiles(g, dtype):
        b0, b1, r0, r1 = tile
        nb, tr = b1 - b0, r1 - r0
        size = g.ci * g.kh * g.kw * nb * tr * g.ow
        flat = scratch(backend, "columns", size, dtype)
        cols = backend.reshape(flat, (g.ci, g.kh, g.kw, nb, tr, g.ow))
        unfold_into(backend, x, g, tile, cols)
        # y[:, b0:b1, r0:r1] is one contiguous run per output channel (whole images, or
        # rows of one image), so this reshape is a view and the matmul writes into y.
        out = backend.reshape(y[:, b0:b1, r0:r1], (G, g.co // G, nb * tr * g.ow))
        backend.matmul_into(k2, backend.reshape(flat, (G, K, nb * tr * g.ow)), out)
    return backend.permute_dims(y, (1, 0, 2, 3))


def _im2col(backend: ArrayBackend, x: Tensor, k: Tensor, g: ConvGeometry, dtype: str) -> Tensor:
    if g.pointwise:
        return _pointwise(backend, x, k, g)
    if has_inplace(backend) and g.n is not None:
        return _im2col_inplace(cast(InPlaceBackend, backend), x, k, g, dtype)
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
    """ValueError unless ``algorithm`` is one of ``ALGORITHMS`` and, given a backend,
    one it can run (``native`` needs ``NativeConv2d``)."""
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
    backend: ArrayBackend, x: Tensor, k: Tensor, g: ConvGeometry, dtype: str, algorithm: str,
    spectrum_cache: SpectrumCache | None = None,
) -> Tensor:  # fmt: skip
    """(n, ci, h, w) * (co, ci/groups, kh, kw) -> (n, co, oh, ow) on already checked and
    converted tensors of one dtype, by an ``algorithm`` that ``check_algorithm`` has
    accepted for this backend. An explicit ``native`` on a geometry the adapter declares
    its kernel wrong or missing for runs ``im2col`` (``native_limit`` names the reason).
    ``spectrum_cache`` keeps the fourier algorithm's kernel spectrum between calls
    (inference only; see ``chanconv.fourier.SpectrumCache``)."""
    if algorithm == "auto":
        algorithm = choose_algorithm(backend, g, dtype)
    elif algorithm == "native" and native_limit(backend, g, dtype) is not None:
        algorithm = "im2col"
    c = canonical_geometry(g)
    if c is not g:  # an output extent of 1: only its one window of X is read
        x, g = x[:, :, : c.h, : c.w], c
    if algorithm == "native":
        padding = g.symmetric_padding
        if padding is None:  # asymmetric ("same" with an even extent): pad here
            x, padding = pad_input(backend, x, g, dtype), (0, 0)
        return backend.conv2d_native(  # type: ignore[attr-defined]
            x, k, stride=g.stride, padding=padding, dilation=g.dilation, groups=g.groups
        )
    if algorithm == "direct":
        return _direct(backend, pad_input(backend, x, g, dtype), k, g)
    if algorithm == "fourier":
        from chanconv.fourier import fourier

        return fourier(backend, x, k, g, dtype, _im2col_limit, spectrum_cache)
    return _im2col(backend, x, k, g, dtype)


def has_native_channels_last(backend: ArrayBackend) -> bool:
    """Whether the backend implements ``NativeChannelsLast`` (a cached check)."""
    return implements(backend, NativeConv2d) and implements(backend, NativeChannelsLast)


def convolve_native_channels_last(backend: ArrayBackend, x: Tensor, k: Tensor,
                                  g: ConvGeometry) -> Tensor:  # fmt: skip
    """(n, h, w, ci) * (co, ci/groups, kh, kw) -> (n, oh, ow, co) by the adapter's
    ``NativeChannelsLast``, on checked tensors of one dtype whose geometry ``g`` (built from
    the channels-first view of x's shape) ``native_limit`` has cleared. Runs the canonical
    geometry, as ``convolve`` does; padding goes to the adapter per side."""
    c = canonical_geometry(g)
    if c is not g:  # an output extent of 1: only its one window of X is read
        x, g = x[:, : c.h, : c.w, :], c
    return cast(NativeChannelsLast, backend).conv2d_native_channels_last(
        x, k, stride=g.stride, pads=g.pads, dilation=g.dilation, groups=g.groups
    )
