"""Dask adapter: chanconv on ``dask.array`` arrays, lazily and chunk by chunk, on one machine
or on a ``dask.distributed`` cluster.

Every result is a lazy Dask array: nothing is computed until the caller asks
(``.compute()``, ``.persist()``, ``da.store``). The protocol's primitives (reshape, matmul,
...) are Dask's own, which serve the section's small operations, ``direct`` and ``im2col``
and the backward pass. The convolution itself (``native``, which ``auto`` picks) is one
blockwise graph (``conv2d_graph``): every output block is computed by
``chanconv.conv2d`` on its input block, with the block's own array library (NumPy blocks on
the NumPy backend) and that backend's own ``auto`` choice, so chunking never changes the
algorithm, only where it runs.

The chunking rule (docs/larger-than-memory.md):

* batch chunks are independent;
* height and width: the input is padded, then cut into cores of ``t * stride`` rows (the
  output's chunks are ``t`` rows, ``t`` the input's chunk size over the stride, at least
  enough for the halo); every core borrows ``dilation * (k - 1) + 1 - stride`` rows of halo
  from the next chunk (``dask.array.overlap``), so block boundaries fall on the stride and
  every block yields exactly its ``t`` output rows;
* input channels: with ``groups == 1`` each channel chunk gives a partial sum, added up by
  a Dask reduction; with groups, channel chunks are cut on group boundaries and each block
  is a grouped convolution of whole groups;
* output channels follow K's chunks along its first axis.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from chanconv.adapter import Adapter
from chanconv.d2l import NUMPY_D2L_ALIASES
from chanconv.protocol import Tensor
from chanconv.workarounds import NativeLimit

# d2l's numpy tab, in dask.array's spelling: the same names, but dask.array has no
# random.rand (random.random is it).
DASK_D2L_ALIASES = {**NUMPY_D2L_ALIASES, "rand": "random.random"}


class DaskBackend(Adapter):
    name = "dask"
    aliases = ("dask.array",)
    framework = "dask"
    extra = "dask"
    d2l_aliases = DASK_D2L_ALIASES
    #: NumPy arrays may stand beside Dask arrays in one call (a kernel, a bias): they are
    #: wrapped as one-chunk Dask arrays, never the other way round.
    wraps = ("numpy",)

    @cached_property
    def fw(self) -> Any:
        """``dask.array``, where the array functions live."""
        import dask.array

        return dask.array

    def version(self) -> str:
        return str(importlib.import_module(self.framework).__version__)

    def is_tensor(self, x: object) -> bool:
        # Only once dask.array itself is imported: "dask" alone may be in sys.modules.
        module = sys.modules.get("dask.array")
        return module is not None and isinstance(x, module.Array)

    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        if isinstance(obj, self.fw.Array):
            return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
        # Lists and NumPy arrays are small by nature here (kernels, biases, the book's
        # examples): one chunk. Large data comes as Dask arrays, chunked by their owner.
        return self.fw.from_array(_numpy().asarray(obj, dtype=dtype), chunks=-1)

    def astype(self, x: Tensor, dtype: str) -> Tensor:
        return x.astype(dtype)

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        try:
            return x.reshape(shape)
        except NotImplementedError:
            pass
        # Dask reshapes only by merging or splitting neighbouring axes chunk-wise. The core's
        # other reshapes (im2col's and the backward pass's, which regroup channels and
        # windows) get whole trailing axes, else one chunk: ``native`` (what ``auto``
        # picks) is the chunk-preserving convolution, these are for checks and small data.
        try:
            return x.rechunk({axis: -1 for axis in range(1, x.ndim)}).reshape(shape)
        except NotImplementedError:
            return x.rechunk(-1).reshape(shape)

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        return self.fw.transpose(x, axes)

    def stack(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.stack(list(arrays), axis=axis)

    def concat(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.concatenate(list(arrays), axis=axis)

    def matmul(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.fw.matmul(x1, x2)

    def sum(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return self.fw.sum(x, axis=axis)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        return self.fw.zeros(shape, dtype=dtype)

    def shape(self, x: Tensor) -> tuple[int, ...]:
        unknown = [axis for axis, size in enumerate(x.shape) if math.isnan(size)]
        if unknown:
            raise ValueError(
                f"a dask array of shape {x.shape} has unknown chunk sizes along axis "
                f"{', '.join(map(str, unknown))} (chunks {x.chunks}); chanconv needs every "
                "size to check shapes and plan halos: call x.compute_chunk_sizes() first"
            )
        return tuple(int(d) for d in x.shape)

    def dtype_name(self, x: Tensor) -> str:
        return str(x.dtype.name)

    def to_numpy(self, x: Tensor) -> Any:
        # An explicit request for values (display, checks): the one place that computes.
        return _numpy().asarray(x.compute())

    def conv2d_native(
        self, x: Tensor, k: Tensor, *, stride: tuple[int, int], padding: tuple[int, int],
        dilation: tuple[int, int], groups: int,
    ) -> Tensor:  # fmt: skip
        return conv2d_graph(self.fw, x, k, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)  # fmt: skip

    def native_limits(self) -> Sequence[NativeLimit]:
        # Every block is computed by chanconv itself on the block's own backend, which
        # routes around that backend's declared limits: the graph has none of its own.
        return ()

    def devices(self) -> list[str]:
        devices = ["cpu"]
        if "distributed" in sys.modules:
            try:
                client = sys.modules["distributed"].default_client()
            except ValueError:  # no client in this process: the local schedulers
                return devices
            workers = client.scheduler_info().get("workers", {})
            devices.append(f"{client.scheduler.address} ({len(workers)} workers)")
        return devices


def _numpy() -> Any:
    # Imported on use: loading an adapter imports no framework (NumPy included).
    return importlib.import_module("numpy")


# --- the blockwise convolution --------------------------------------------------------------


def output_chunks(in_chunks: tuple[int, ...], stride: int, halo: int, out: int) -> tuple[int, ...]:
    """The output's chunks along one spatial axis: the input's chunk size over the stride,
    and never so few rows that a core (``t * stride`` input rows) is shorter than the halo
    it lends to the block before it."""
    t = max(1, max(in_chunks) // stride, -(-halo // stride))
    full, rest = divmod(out, t)
    return (t,) * full + ((rest,) if rest else ())


def _cores(out_chunks: tuple[int, ...], stride: int, extent: int) -> tuple[int, ...]:
    """Input rows (padded, trimmed to those used) owned by each output chunk: ``t * stride``
    each, the last one up to the end of its kernel's reach."""
    return (*(t * stride for t in out_chunks[:-1]), (out_chunks[-1] - 1) * stride + extent)


def _block_conv(xb: Any, kb: Any, *, stride: tuple[int, int], padding: tuple[int, int],
                dilation: tuple[int, int], partial: bool) -> Any:  # fmt: skip
    """One output block: chanconv.conv2d on the block's own array library. With groups,
    the block holds whole groups: as many as its channels over K's channels per group."""
    from chanconv import backend_for, conv2d

    xa, ka = backend_for(xb), backend_for(kb)
    if xa is not None and ka is not None and xa is not ka:  # e.g. CuPy blocks, NumPy kernel
        kb = xa.asarray(ka.to_numpy(kb))
    y = conv2d(xb, kb, stride=stride, padding=padding, dilation=dilation,
               groups=xb.shape[1] // kb.shape[1])  # fmt: skip
    return y[:, :, None] if partial else y


def conv2d_graph(
    da: Any, x: Any, k: Any, *, stride: tuple[int, int], padding: tuple[int, int],
    dilation: tuple[int, int], groups: int,
) -> Any:  # fmt: skip
    """x (n, ci, h, w) and k (co, ci/groups, kh, kw), Dask arrays of one dtype, symmetric
    zero padding: the lazy (n, co, oh, ow) convolution, one task per output block (plus the
    halo exchange and, for chunked input channels, the partial sums' reduction)."""
    meta_from_array = da.utils.meta_from_array
    (h, w), (co, cig, kh, kw) = x.shape[2:], k.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the kernel's reach
    oh, ow = (h + 2 * ph - eh) // sh + 1, (w + 2 * pw - ew) // sw + 1
    halo_h, halo_w = max(eh - sh, 0), max(ew - sw, 0)
    out_h = output_chunks(x.chunks[2], sh, halo_h, oh)
    out_w = output_chunks(x.chunks[3], sw, halo_w, ow)

    # Whole images in one spatial block (the common case): the block pads itself, which
    # saves a copy of the input; otherwise the padding is part of the graph.
    whole = len(out_h) == len(out_w) == 1
    if not whole:
        if ph or pw:
            x = da.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        x = x[:, :, : (oh - 1) * sh + eh, : (ow - 1) * sw + ew]  # rows no output reaches
    if groups == 1:
        in_channels = x.chunks[1]
        k = k.rechunk({1: in_channels, 2: -1, 3: -1})
    else:  # channel chunks of whole groups, the kernel's output channels alike
        per_chunk = min(groups, max(1, x.chunks[1][0] // cig))
        cog = co // groups
        full, rest = divmod(groups, per_chunk)
        counts = (per_chunk,) * full + ((rest,) if rest else ())
        in_channels = tuple(c * cig for c in counts)
        k = k.rechunk({0: tuple(c * cog for c in counts), 1: -1, 2: -1, 3: -1})
    if whole:
        x = x.rechunk({1: in_channels, 2: -1, 3: -1})
    else:
        x = x.rechunk({1: in_channels, 2: _cores(out_h, sh, eh), 3: _cores(out_w, sw, ew)})
    if (halo_h or halo_w) and not whole:
        x = da.overlap.overlap(x, depth={0: 0, 1: 0, 2: (0, halo_h), 3: (0, halo_w)},
                               boundary="none", allow_rechunk=False)  # fmt: skip

    settings = {"stride": stride, "dilation": dilation,
                "padding": (ph, pw) if whole else (0, 0)}  # fmt: skip
    spatial = {"h": out_h, "w": out_w}
    if groups > 1:
        return da.blockwise(
            _block_conv, "nchw", x, "nchw", k, "cpab", partial=False, concatenate=True,
            align_arrays=False,  # "c": x's channel chunks pair with K's, unequal sizes
            adjust_chunks={"c": k.chunks[0], **spatial}, meta=meta_from_array(x, ndim=4),
            **settings,
        )  # fmt: skip
    if len(in_channels) == 1:
        return da.blockwise(
            _block_conv, "nohw", x, "nchw", k, "ocab", partial=False, adjust_chunks=spatial,
            concatenate=True, meta=meta_from_array(x, ndim=4), **settings,
        )  # fmt: skip
    partials = da.blockwise(
        _block_conv, "nochw", x, "nchw", k, "ocab", partial=True, concatenate=True,
        adjust_chunks={"c": 1, **spatial}, meta=meta_from_array(x, ndim=5), **settings,
    )  # fmt: skip
    return partials.sum(axis=2)
