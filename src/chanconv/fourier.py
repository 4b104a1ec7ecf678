"""The ``fourier`` algorithm: overlap-save tiles, every transform a matrix multiplication.

A convolution with a large kernel does ci*kh*kw multiplications per output and channel; in
the frequency domain it does one complex multiplication per frequency. Whole-image FFTs
lose (per-call kernel spectra of the image's size dominate), so the output is cut into
tiles of mh x mw pixels, each computed from an input tile of th x tw = (mh + keh - 1) x
(mw + kew - 1) pixels by circular correlation of size th x tw (overlap-save: the wrapped
part is cut off). The small 2-D DFTs are matrix multiplications by precomputed real
cosine and sine matrices, and the half spectrum of a real signal is enough (Hermitian
symmetry along the columns), so the whole algorithm is ``matmul``, ``reshape``,
``permute_dims``, ``stack``/``concat``, slicing, ``+`` and ``-``: written once against the
protocol, differentiated by every framework's autograd.

Per frequency the channels mix as one real matmul: the conjugate kernel spectrum times the
input spectrum, a complex product written as the 2x2 real block
[[Kr, Ki], [-Ki, Kr]] @ [Xr; Xi], batched over the frequencies and the groups.

Geometry: the transform computes the stride-1 correlation of the padded input with the
dilated kernel (dilation inserts zeros into the kernel, which the spectrum absorbs for
free) and keeps every stride-th output. Stride > 1 is therefore correct but wasteful, and
``auto`` weighs that (see ``fourier_cost``). float16 and bfloat16 compute in float32
and are rounded once at the end: a DFT sums a whole tile, which half precision cannot
hold to the convolution's accuracy.

Memory: the frequency-domain tiles of the input and output of one chunk are bounded by
``chanconv.algorithms.im2col_limit``; larger problems are processed in chunks of tile
rows and images, like im2col's tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chanconv.geometry import ConvGeometry
from chanconv.protocol import ArrayBackend, Tensor
from chanconv.registry import register_cache

#: Transform sizes tried for each axis (even, so the half spectrum has a Nyquist column).
#: 64 is offered only to kernels too wide for 32: a 32-point tile's DFT matrices (32x34
#: floats) and its per-frequency operands stay in the L1/L2 caches of the benchmark
#: machine, larger ones do not, and the rounding error grows with the tile (a DFT sums
#: all of it). The issue's prototype used 32x32 tiles for 5x5 kernels.
TILE_SIZES = (4, 8, 16, 32, 64)


def _sizes(extent: int) -> list[int]:
    """Transform sizes for a (dilated) kernel extent: at least two outputs per tile, and
    the largest only when no smaller one fits; a kernel wider than all gets one size that
    leaves it two outputs."""
    fits = [t for t in TILE_SIZES[:-1] if t >= extent + 1]
    if fits:
        return fits
    return [max(TILE_SIZES[-1], extent + 1 + (extent + 1) % 2)]


@dataclass(frozen=True)
class FourierPlan:
    """Tile sizes and chunking for one geometry (all plain ints)."""

    th: int  # transform size along rows
    tw: int  # transform size along columns
    mh: int  # output rows per tile
    mw: int  # output columns per tile
    keh: int  # dilated kernel extent along rows
    kew: int
    rows: int  # tiles down the stride-1 output
    cols: int  # tiles across
    oh1: int  # stride-1 output rows needed
    ow1: int
    images_per_chunk: int  # whole images per chunk, or 0 when one image is split ...
    rows_per_chunk: int  # ... into chunks of this many tile rows

    @property
    def half(self) -> int:
        """Column frequencies kept: tw // 2 + 1 (the rest are conjugates)."""
        return self.tw // 2 + 1


def _axis_cost(size: int, extent: int, t: int) -> tuple[int, int]:
    m = t - extent + 1
    return m, -(-size // m)


def fourier_cost(g: ConvGeometry, th: int, tw: int) -> tuple[float, float]:
    """(multiplications, elements moved) of the fourier algorithm with th x tw transforms:
    the channel mixing, the input and output transforms, and the data it copies (about
    eight passes over the frequency-domain tiles). Used to pick the tile size and by the
    ``auto`` rule."""
    keh, kew = g.dilation[0] * (g.kh - 1) + 1, g.dilation[1] * (g.kw - 1) + 1
    oh1, ow1 = (g.oh - 1) * g.stride[0] + 1, (g.ow - 1) * g.stride[1] + 1
    mh, rows = _axis_cost(oh1, keh, th)
    mw, cols = _axis_cost(ow1, kew, tw)
    v, tiles = tw // 2 + 1, g.batch("the fourier algorithm") * rows * cols
    cig, cog = g.ci // g.groups, g.co // g.groups
    mixing = th * v * 3 * cig * cog * g.groups * tiles
    forward = tiles * g.ci * (2 * v * th * tw + 4 * th * th * v)
    inverse = tiles * g.co * (4 * mh * th * v + 2 * mh * mw * v)
    kernel = g.co * cig * (2 * v * keh * kew + 4 * th * keh * v)
    moved = 8.0 * tiles * th * v * 2 * (g.ci + g.co) + 4.0 * th * v * 3 * cig * cog * g.groups
    return float(mixing + forward + inverse + kernel), moved


@lru_cache(maxsize=256)
def fourier_plan(g: ConvGeometry, itemsize: int, limit: int) -> FourierPlan:
    """Tile sizes that minimise ``fourier_cost`` (multiplications plus a weight for
    the data moved), and chunks whose frequency-domain tiles stay within ``limit`` bytes."""
    keh, kew = g.dilation[0] * (g.kh - 1) + 1, g.dilation[1] * (g.kw - 1) + 1
    oh1, ow1 = (g.oh - 1) * g.stride[0] + 1, (g.ow - 1) * g.stride[1] + 1
    best: tuple[float, int, int] | None = None
    for th in _sizes(keh):
        for tw in _sizes(kew):
            mults, moved = fourier_cost(g, th, tw)
            score = mults + MOVE_WEIGHT * moved
            if best is None or score < best[0]:
                best = (score, th, tw)
    assert best is not None  # _sizes is never empty
    _, th, tw = best
    mh, rows = _axis_cost(oh1, keh, th)
    mw, cols = _axis_cost(ow1, kew, tw)
    # Live at once, at worst: a stage's input and output, each up to twice the spectrum.
    per_tile = th * (tw // 2 + 1) * 2 * max(g.ci, g.co) * itemsize * 4
    per_row = max(1, cols * per_tile)
    rows_per_chunk = max(1, limit // per_row)
    if rows_per_chunk >= rows:
        n = g.batch("the fourier algorithm")
        images, rows_per_chunk = max(1, min(n, rows_per_chunk // rows)), rows
    else:
        images = 0
    return FourierPlan(th, tw, mh, mw, keh, kew, rows, cols, oh1, ow1, images, rows_per_chunk)


#: Weight of one element copied against one multiplication inside a matmul, in the cost
#: above: copies run at memory speed, matmuls at cache speed. Calibrated on this project's
#: 2-core benchmark machine (docs/performance.md) with NumPy/OpenBLAS and torch.
MOVE_WEIGHT = 4.0

_constants: dict[tuple[object, ...], tuple[Tensor, ...]] = register_cache({})


def _dft_lists(plan: FourierPlan) -> tuple[list[Any], ...]:
    th, tw, mh, mw, v = plan.th, plan.tw, plan.mh, plan.mw, plan.half
    two_pi = 2 * math.pi

    def cos(a: int, b: int, t: int) -> float:
        return math.cos(two_pi * ((a * b) % t) / t)

    def sin(a: int, b: int, t: int) -> float:
        return math.sin(two_pi * ((a * b) % t) / t)

    # Columns, forward, half spectrum: Z = x Dc^T, rows [Re; Im] = [cos; -sin].
    wc = [[cos(f, c, tw) for c in range(tw)] for f in range(v)]
    wc += [[-sin(f, c, tw) for c in range(tw)] for f in range(v)]
    # Rows, forward, full spectrum: [cos; sin] against the complex half spectrum.
    wr = [[cos(u, r, th) for r in range(th)] for u in range(th)]
    wr += [[sin(u, r, th) for r in range(th)] for u in range(th)]
    # Rows, inverse, only the mh output rows overlap-save keeps.
    wa = [[cos(u, p, th) for u in range(th)] for p in range(mh)]
    wa += [[sin(u, p, th) for u in range(th)] for p in range(mh)]
    # Columns, inverse from the half spectrum: Re(sum_v w_v Z_v e^{+i..}) / (th*tw), with
    # w_v = 2 for the frequencies whose conjugates were dropped.
    scale = 1.0 / (th * tw)

    def weight(f: int) -> float:
        return scale * (1.0 if f == 0 or 2 * f == tw else 2.0)

    wqr = [[[weight(f) * cos(f, q, tw) for f in range(v)] for q in range(mw)]]
    wqi = [[[-weight(f) * sin(f, q, tw) for f in range(v)] for q in range(mw)]]
    wck = [row[: plan.kew] for row in wc]
    wrk = [row[: plan.keh] for row in wr]
    return wc, wr, wa, wqr, wqi, wck, wrk


def _dft_matrices(backend: ArrayBackend, plan: FourierPlan, dtype: str) -> tuple[Tensor, ...]:
    """The DFT matrices as tensors of the backend, made once per backend, plan and dtype
    through ``asarray`` of plain lists: the core builds its constants without NumPy."""
    key = (type(backend), backend.name, plan, dtype)
    found = _constants.get(key)
    if found is None:
        if len(_constants) >= 256:
            _constants.clear()
        found = _constants[key] = tuple(backend.asarray(m, dtype) for m in _dft_lists(plan))
    return found


def _combine(
    backend: ArrayBackend, a: Tensor, t: int, v: int, rest: tuple[int, ...]
) -> tuple[Tensor, Tensor]:
    """From (2t, 2v, ...) = [[Cr Zr, Cr Zi], [Sr Zr, Sr Zi]], the spectrum X = (Cr - i Sr) Z:
    Xr = Cr Zr + Sr Zi, Xi = Cr Zi - Sr Zr, each (t, v, *rest)."""
    a = backend.reshape(a, (2 * t, 2 * v, *rest))
    # Every axis named, as the Array API standard asks of an index.
    tail = (slice(None),) * len(rest)
    top, bottom, left, right = slice(0, t), slice(t, 2 * t), slice(0, v), slice(v, 2 * v)
    tl, br = (top, left, *tail), (bottom, right, *tail)
    tr, bl = (top, right, *tail), (bottom, left, *tail)
    re, im = a[tl] + a[br], a[tr] - a[bl]
    return re, im


Spectrum = tuple[Tensor, Tensor, Tensor]


def kernel_spectrum(
    backend: ArrayBackend, k: Tensor, g: ConvGeometry, plan: FourierPlan, dtype: str
) -> Spectrum:
    """The per-frequency mixing matrices of the kernel (co, ci/G, kh, kw), each
    (th, v, G, cog, cig): (Kr - Ki, Kr, Ki) of its spectrum K, so that the product with
    the conjugate, conj(K) X, takes three real matmuls instead of four (Gauss's trick:
    Re = (Kr - Ki) Xr + Ki (Xr + Xi), Im = (Kr - Ki) Xr + Kr (Xi - Xr)). Only the
    kernel's own keh x kew corner enters the DFT (the rest is zero padding)."""
    from chanconv.algorithms import spread_axis

    G, cig, cog = g.groups, g.ci // g.groups, g.co // g.groups
    *_, wck, wrk = _dft_matrices(backend, plan, dtype)
    k = spread_axis(backend, k, 2, g.dilation[0], dtype)  # dilation: zeros in the kernel
    k = spread_axis(backend, k, 3, g.dilation[1], dtype)
    kt = backend.reshape(backend.permute_dims(k, (2, 3, 0, 1)), (plan.keh, plan.kew, g.co * cig))
    z = backend.matmul(wck, kt)  # (keh, 2v, co*cig)
    a = backend.matmul(wrk, backend.reshape(z, (plan.keh, 2 * plan.half * g.co * cig)))
    re, im = _combine(backend, a, plan.th, plan.half, (G, cog, cig))
    return (re - im, re, im)


def _chunk(
    backend: ArrayBackend, xq: Tensor, kk: Spectrum, g: ConvGeometry, plan: FourierPlan,
    mats: tuple[Tensor, ...], nb: int, nrows: int,
) -> Tensor:  # fmt: skip
    """Output (nb, co, nrows*mh, cols*mw) from the input rows of nrows tile rows,
    xq (nrows*mh + keh - 1, width, ci, nb)."""
    wc, wr, wa, wqr, wqi, _, _ = mats
    th, tw, mh, mw, v = plan.th, plan.tw, plan.mh, plan.mw, plan.half
    G, cig, cols = g.groups, g.ci // g.groups, plan.cols
    # One name per stage, rebound as the data moves on, so that each stage's input is freed
    # as soon as the next exists: the chunk's peak is about two stages, not ten.
    p = nb * nrows * cols
    t = backend.stack([xq[i * mh : i * mh + th, j * mw : j * mw + tw, :, :]
                       for i in range(nrows) for j in range(cols)], axis=4)  # fmt: skip
    t = backend.matmul(wc, backend.reshape(t, (th, tw, g.ci * p)))  # columns: (th, 2v, ci*p)
    t = backend.matmul(wr, backend.reshape(t, (th, 2 * v * g.ci * p)))  # rows
    xr, xi = _combine(backend, t, th, v, (G, cig, p))
    del t
    k1, k2, k3 = kk
    common = backend.matmul(k1, xr)  # the channel mixing, (th, v, G, cog, p) each
    yr = common + backend.matmul(k3, xr + xi)
    yi = common + backend.matmul(k2, xi - xr)
    del xr, xi, common
    rows = (th, v * g.co * p)
    ar = backend.reshape(backend.matmul(wa, backend.reshape(yr, rows)), (2 * mh, v, g.co * p))
    ai = backend.reshape(backend.matmul(wa, backend.reshape(yi, rows)), (2 * mh, v, g.co * p))
    del yr, yi
    first, second = slice(0, mh), slice(mh, 2 * mh)
    out = backend.matmul(wqr, ar[first, :, :] - ai[second, :, :]) + backend.matmul(
        wqi, ai[first, :, :] + ar[second, :, :]
    )
    out = backend.reshape(out, (mh, mw, g.co, nb, nrows, cols))
    out = backend.permute_dims(out, (3, 2, 4, 0, 5, 1))
    return backend.reshape(out, (nb, g.co, nrows * mh, cols * mw))


def _fit(backend: ArrayBackend, t: Tensor, before: int, size: int, need: int, axis: int,
         dtype: str) -> Tensor:  # fmt: skip
    """``t`` padded by ``before`` zeros and cut or zero-extended to ``need`` entries."""
    from chanconv.algorithms import pad_axis

    after = need - before - size
    if after >= 0:
        return pad_axis(backend, t, before, after, axis, dtype)
    t = pad_axis(backend, t, before, 0, axis, dtype)
    # t is (n, ci, h, w): every axis named, as the Array API standard asks of an index.
    return t[(slice(None),) * axis + (slice(0, need),) + (slice(None),) * (3 - axis)]


def fourier(
    backend: ArrayBackend, x: Tensor, k: Tensor, g: ConvGeometry, dtype: str, limit: int,
    cache: SpectrumCache | None = None,
) -> Tensor:  # fmt: skip
    """(n, ci, h, w) * (co, ci/G, kh, kw) -> (n, co, oh, ow) by overlap-save tiles;
    ``cache`` keeps the kernel's spectrum between calls (see ``SpectrumCache``)."""
    work = "float32" if dtype in ("float16", "bfloat16") else dtype
    if work != dtype:
        x = backend.astype(x, work)
        k = backend.astype(k, work)
    itemsize = 8 if work == "float64" else 4
    n = g.batch("the fourier algorithm")
    plan = fourier_plan(g, itemsize, limit)
    mats = _dft_matrices(backend, plan, work)
    if cache is None:
        kk = kernel_spectrum(backend, k, g, plan, work)
    else:
        kk = cache.spectrum(backend, k, g, plan, work)
    pt, _, pl, _ = g.pads
    # Padded where the input is contiguous; the tiles' stack then reads it as (h, w, ci, n),
    # so the one copy that gathers the tiles also does the transposition.
    xq = _fit(backend, x, pt, g.h, plan.rows * plan.mh + plan.keh - 1, 2, work)
    xq = _fit(backend, xq, pl, g.w, plan.cols * plan.mw + plan.kew - 1, 3, work)
    xq = backend.permute_dims(xq, (2, 3, 1, 0))  # (h, w, ci, n): tiles slice the front
    mh, span = plan.mh, plan.keh - 1
    (sh, sw) = g.stride

    def strided(part: Tensor, first_row: int, nrows: int) -> Tensor:
        # Each chunk keeps only its strided outputs before the chunks are joined, so the
        # stride-1 result of the whole call is never held at once.
        start = (-first_row) % sh
        stop = min(nrows * mh, plan.oh1 - first_row)
        return part[:, :, start:stop:sh, : plan.ow1 : sw]

    if plan.images_per_chunk:
        step = plan.images_per_chunk
        parts = [strided(_chunk(backend, xq[:, :, :, b0 : min(b0 + step, n)], kk, g, plan, mats,
                                min(step, n - b0), plan.rows), 0, plan.rows)
                 for b0 in range(0, n, step)]  # fmt: skip
        y = parts[0] if len(parts) == 1 else backend.concat(parts, axis=0)
    else:
        step, images = plan.rows_per_chunk, []
        for b in range(n):
            image, strips = xq[:, :, :, b : b + 1], []
            for r0 in range(0, plan.rows, step):
                nrows = min(step, plan.rows - r0)
                rows = image[r0 * mh : (r0 + nrows) * mh + span, :, :, :]
                part = _chunk(backend, rows, kk, g, plan, mats, 1, nrows)
                strips.append(strided(part, r0 * mh, nrows))
            images.append(strips[0] if len(strips) == 1 else backend.concat(strips, axis=2))
        y = images[0] if n == 1 else backend.concat(images, axis=0)
    return y if work == dtype else backend.astype(y, dtype)


class SpectrumCache:
    """The kernel spectrum of the last weights seen, kept for the next call while they are
    unchanged: for a layer in inference (NumPy's ``chanconv.Conv2DLayer`` keeps one).

    Never stale: a kept spectrum is reused only when the backend, geometry, tile plan and
    dtype are the same *and* the weights' contents are byte for byte the same as when it
    was made, compared in full on every call (a copy and a comparison of the kernel, a
    small fraction of the transform it saves: the spectrum is (th*(tw/2+1)*4) times the
    kernel's size). So an in-place update, a new tensor or an optimizer step is always
    seen, whatever the framework, with no version counter to trust.

    The kept spectrum is made from a detached copy of the weights: no gradient reaches K
    through it. Use it where nothing differentiates the call (inference, or NumPy, whose
    backward pass ``conv2d_vjp`` recomputes from the weights).
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._contents: bytes = b""
        self._spectrum: Spectrum | None = None
        #: how many calls reused the kept spectrum, and how many made one
        self.hits = 0
        self.misses = 0

    def spectrum(
        self, backend: ArrayBackend, k: Tensor, g: ConvGeometry, plan: FourierPlan, dtype: str
    ) -> Spectrum:
        key = (type(backend), backend.name, g, plan, dtype, backend.dtype_name(k))
        contents = backend.to_numpy(k).tobytes()
        if self._spectrum is not None and key == self._key and contents == self._contents:
            self.hits += 1
            return self._spectrum
        self.misses += 1
        detached = backend.astype(backend.asarray(backend.to_numpy(k)), dtype)
        self._spectrum = kernel_spectrum(backend, detached, g, plan, dtype)
        self._key, self._contents = key, contents
        return self._spectrum

    def clear(self) -> None:
        self._key, self._contents, self._spectrum = None, b"", None
