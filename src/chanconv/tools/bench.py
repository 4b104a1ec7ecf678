"""Benchmarks: chanconv's algorithms against each framework's own convolution, in one run.

``python -m chanconv bench [--backend NAME] [--quick] [--out DIR]`` and ``nox -s bench``.
Every figure is a ratio taken in the same process: throughput relative to the framework's
own convolution, and to the machine's SGEMM peak as that framework's matmul reaches it.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import logging
import math
import os
import platform
import random
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

from chanconv.algorithms import has_native, im2col_limit
from chanconv.cost import conv2d_cost
from chanconv.operations import conv2d, conv2d_vjp
from chanconv.protocol import (
    ArrayBackend,
    Compiler,
    ConformanceHelpers,
    NativeConv2d,
    Tensor,
    implements,
)
from chanconv.registry import get_adapter


@dataclass(frozen=True)
class Workload:
    name: str
    input_shape: tuple[int, int, int, int]
    kernel_shape: tuple[int, int, int, int]
    padding: int = 0
    #: whether d2l's Python-loop corr2d is timed too (on one image, scaled to the batch)
    loop_baseline: bool = False
    stride: int = 1

    @property
    def result_bytes(self) -> int:
        return 4 * math.prod(conv2d_cost(self.input_shape, self.kernel_shape,
                                         padding=self.padding,
                                         stride=self.stride).output_shape)  # fmt: skip

    @property
    def flops(self) -> int:
        return conv2d_cost(
            self.input_shape, self.kernel_shape, padding=self.padding, stride=self.stride
        ).forward_flops


WORKLOADS = [
    Workload("seed", (1, 2, 3, 3), (3, 2, 2, 2), loop_baseline=True),
    Workload("lenet-conv1", (256, 1, 28, 28), (6, 1, 5, 5), padding=2, loop_baseline=True),
    Workload("lenet-conv2", (256, 6, 14, 14), (16, 6, 5, 5), loop_baseline=True),
    Workload("resnet-3x3", (8, 64, 56, 56), (64, 64, 3, 3), padding=1),
    Workload("bottleneck-1x1", (8, 256, 56, 56), (64, 256, 1, 1)),
    Workload("d2l-128ch-5x5", (1, 128, 256, 256), (128, 128, 5, 5), padding=2),
    # A ResNet's first layer: few input channels, a large kernel, stride 2 (issue 14).
    Workload("resnet-7x7-s2", (8, 3, 224, 224), (64, 3, 7, 7), padding=3, stride=2),
]

#: --quick: the same kinds of layers, small enough for a CI smoke run.
QUICK_WORKLOADS = [
    Workload("seed", (1, 2, 3, 3), (3, 2, 2, 2), loop_baseline=True),
    Workload("lenet-conv2-small", (8, 6, 14, 14), (16, 6, 5, 5), loop_baseline=True),
    Workload("resnet-3x3-small", (2, 16, 28, 28), (16, 16, 3, 3), padding=1),
    Workload("bottleneck-1x1-small", (2, 64, 28, 28), (16, 64, 1, 1)),
    Workload("d2l-5x5-small", (1, 16, 64, 64), (16, 16, 5, 5), padding=2),
]


@dataclass
class Measurement:
    workload: str
    backend: str
    method: str  # "native-call", "auto", "direct", "im2col", "native", "d2l-loops"
    seconds: float
    gflops: float
    peak_fraction: float
    ratio_to_framework: float | None
    #: growth of the process's memory during one call, above what it held before
    peak_memory_bytes: int
    #: that growth less the result's own size: the working memory the method needs
    extra_memory_bytes: int
    note: str = ""
    #: "forward": conv2d alone; "training": forward and backward (gradients of x and k)
    mode: str = "forward"
    #: the row ``ratio_to_framework`` is taken against ("" in reports from before the field)
    reference: str = ""


@dataclass
class Report:
    backend: str
    framework_version: str
    machine: str
    #: the machine's SGEMM peak: the best of this framework's matmul and NumPy's BLAS
    sgemm_gflops: float
    #: this framework's own matmul on the same problem
    framework_sgemm_gflops: float
    im2col_limit_bytes: int
    measurements: list[Measurement] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]  # fmt: skip


def _heap_reader() -> Callable[[], int]:
    """Bytes the C heap has handed out and not taken back (glibc's mallinfo2: in use in
    every arena, plus mmapped blocks); every framework here allocates through it. Where
    there is no glibc, the resident size, which overstates: freed memory the allocator
    keeps still counts."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return _rss
    mallinfo2.restype = _MallInfo2

    def live() -> int:
        info = mallinfo2()
        return int(info.uordblks + info.hblkhd)

    return live


class _HeapPeak:
    """Peak of live C-heap bytes above the starting level while the block runs, sampled
    every half millisecond from a thread (the frameworks release the GIL while they
    compute)."""

    def __init__(self) -> None:
        self._read = _heap_reader()

    def __enter__(self) -> _HeapPeak:
        self.base = self.peak = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.0005):
            self.peak = max(self.peak, self._read())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read())

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.base)


class _TracedPeak:
    """NumPy reports every array it allocates to tracemalloc: an exact peak."""

    def __enter__(self) -> _TracedPeak:
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def _memory_probe(backend: ArrayBackend) -> _HeapPeak | _TracedPeak:
    return _TracedPeak() if backend.name == "numpy" else _HeapPeak()


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: no memory figure
        return 0


def _best_time(run: Callable[[], object], budget: float, max_repeats: int) -> float:
    """Best wall time of ``run`` over repeats within ``budget`` seconds (one warm-up)."""
    run()
    best, spent, repeats = math.inf, 0.0, 0
    while repeats < max_repeats and (repeats < 2 or spent < budget):
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        best, spent, repeats = min(best, elapsed), spent + elapsed, repeats + 1
    return best


def _best_times(
    runs: dict[str, Callable[[], object]], budget: float, max_repeats: int
) -> dict[str, float]:
    """Best wall time of each run, taken in rounds that time every run once in turn (after
    one warm-up each): a machine that slows down or speeds up during the measurement moves
    every method alike, so the ratios between them hold."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, math.inf)
    spent, rounds = 0.0, 0
    while rounds < max_repeats and (rounds < 2 or spent < budget):
        for method, run in runs.items():
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            best[method], spent = min(best[method], elapsed), spent + elapsed
        rounds += 1
    return best


def _random(backend: ArrayBackend, shape: tuple[int, ...], rng: random.Random) -> Tensor:
    import numpy

    data = numpy.random.default_rng(rng.randrange(2**32)).standard_normal(shape)
    return backend.asarray(data.astype("float32"))


def _sync(backend: ArrayBackend, y: Tensor) -> None:
    """Wait for the result (or each of a tuple of gradients): MXNet and JAX compute
    asynchronously."""
    if isinstance(y, (list, tuple)):
        for part in y:
            _sync(backend, part)
        return
    if not backend.is_tensor(y):  # already on the host (a helper's NumPy copy)
        return
    if implements(backend, Compiler):
        cast(Compiler, backend).wait(y)
        return
    wait = getattr(y, "wait_to_read", None)
    if wait is not None:
        wait()


def framework_conv(
    backend: ArrayBackend, w: Workload, x: Tensor, k: Tensor
) -> list[tuple[str, Callable[[], object]]]:
    """The framework's own convolution, called directly on data in its preferred layout
    (prepared here, outside the timing): the first row is the reference every ratio is
    taken against, auto-compiled's excepted (``PAIRED_REFERENCES``). NumPy has none: it is
    compared with torch's, when torch is installed beside it. TensorFlow's CPU convolution
    takes NHWC only, so its NCHW call (the same data chanconv is given, transposed in and
    out) is timed too, as a second row."""
    p, s = w.padding, w.stride
    if backend.name in ("torch", "numpy"):
        try:
            import torch
        except ImportError:
            return []
        f = torch.nn.functional.conv2d
        tx, tk = (torch.as_tensor(backend.to_numpy(a)) for a in (x, k))
        label = "torch-call" if backend.name == "numpy" else "framework-call"
        return [(label, lambda: f(tx, tk, padding=p, stride=s))]
    if backend.name == "tensorflow":
        tf = backend.fw  # type: ignore[attr-defined]
        pads = ((0, 0), (p, p), (p, p), (0, 0))
        # NHWC input and HWIO kernel: TensorFlow's CPU layout.
        fx, fk = tf.transpose(x, (0, 2, 3, 1)), tf.transpose(k, (2, 3, 1, 0))

        def nchw() -> object:
            nhwc = tf.nn.conv2d(tf.transpose(x, (0, 2, 3, 1)), tf.transpose(k, (2, 3, 1, 0)),
                                strides=s, padding=pads)  # fmt: skip
            return tf.transpose(nhwc, (0, 3, 1, 2))

        return [("framework-call", lambda: tf.nn.conv2d(fx, fk, strides=s, padding=pads)),
                ("framework-nchw", nchw)]  # fmt: skip
    if backend.name == "mxnet":
        nd = backend.fw.nd  # type: ignore[attr-defined]
        co, _, kh, kw = w.kernel_shape
        mx_x, mx_k = x.as_nd_ndarray(), k.as_nd_ndarray()
        return [("framework-call", lambda: nd.Convolution(
            mx_x, mx_k, kernel=(kh, kw), pad=(p, p), stride=(s, s), num_filter=co, no_bias=True
        ))]  # fmt: skip
    return _extension_references(backend, w, x, k)


def _extension_references(
    backend: ArrayBackend, w: Workload, x: Tensor, k: Tensor
) -> list[tuple[str, Callable[[], object]]]:
    """Any other backend's own convolution, through its NativeConv2d extension; with a
    Compiler extension, compiled first (the reference), then eager."""
    if not has_native(backend):
        return []
    native, p = cast(NativeConv2d, backend), w.padding

    def own(x: Tensor, k: Tensor) -> Tensor:
        return native.conv2d_native(x, k, stride=(w.stride, w.stride), padding=(p, p),
                                    dilation=(1, 1), groups=1)  # fmt: skip

    eager = ("framework-call", partial(own, x, k))
    if not implements(backend, Compiler):
        return [eager]
    compiled = cast(Compiler, backend).compile(own)
    return [("framework-compiled", partial(compiled, x, k)), eager]


#: Rows whose ratio is taken against another row than the workload's first reference:
#: chanconv compiled against the framework's own convolution compiled the same way.
PAIRED_REFERENCES = {"auto-compiled": "framework-compiled"}

#: Rows whose first call compiles (traces, hybridizes): made outside the timing, its time
#: reported in the note.
COMPILED_METHODS = ("framework-compiled", "auto-compiled")


def reference_of(method: str, references: Sequence[str], timed: Sequence[str]) -> str | None:
    """The row a method's ratio is taken against: its pair (``PAIRED_REFERENCES``) where
    that was timed, else the workload's first reference; None where there is none."""
    paired = PAIRED_REFERENCES.get(method)
    if paired is not None and paired in timed:
        return paired
    return references[0] if references else None


def _channels_last(backend: ArrayBackend, w: Workload, x: Tensor,
                   k: Tensor) -> dict[str, Callable[[], object]]:  # fmt: skip
    """chanconv's ``auto`` on the same data in NHWC (transposed here, outside the timing),
    ``data_format="channels_last"``: the "auto-nhwc" row, against the first reference
    (TensorFlow's is ``tf.nn.conv2d`` on NHWC data; torch's and MXNet's are NCHW, so
    there the row shows what channels-last costs)."""
    import numpy

    nhwc = backend.asarray(numpy.ascontiguousarray(backend.to_numpy(x).transpose(0, 2, 3, 1)))
    return {"auto-nhwc": partial(conv2d, nhwc, k, padding=w.padding, stride=w.stride,
                                 data_format="channels_last")}  # fmt: skip


def _compiled_methods(
    backend: ArrayBackend, w: Workload, x: Tensor, k: Tensor
) -> dict[str, Callable[[], object]]:
    """chanconv's ``auto`` compiled by the framework ("auto-compiled") and the framework's
    own convolution compiled the same way ("framework-compiled", its reference): through
    the Compiler extension (``torch.compile``, ``tf.function``, ``jax.jit``), and on MXNet
    hybridized Gluon blocks. TensorFlow's pair runs on NHWC data, chanconv's call with
    ``data_format="channels_last"``. JAX's framework-compiled row is its first reference
    already (``_extension_references``)."""
    if backend.name == "mxnet":
        return _hybridized(backend, w, x, k)
    if not implements(backend, Compiler):
        return {}
    compiler, p, s = cast(Compiler, backend), w.padding, w.stride
    methods: dict[str, Callable[[], object]] = {}
    data_format = "channels_first"
    if backend.name == "torch":
        f = backend.fw.nn.functional.conv2d  # type: ignore[attr-defined]

        def own(x: Tensor, k: Tensor) -> Tensor:
            return cast(Tensor, f(x, k, padding=p, stride=s))

        methods["framework-compiled"] = partial(compiler.compile(own), x, k)
    elif backend.name == "tensorflow":
        tf = backend.fw  # type: ignore[attr-defined]
        pads = ((0, 0), (p, p), (p, p), (0, 0))
        fk = tf.transpose(k, (2, 3, 1, 0))

        def tf_own(x: Tensor, k: Tensor) -> Tensor:
            return cast(Tensor, tf.nn.conv2d(x, k, strides=s, padding=pads))

        x, data_format = tf.transpose(x, (0, 2, 3, 1)), "channels_last"
        methods["framework-compiled"] = partial(compiler.compile(tf_own), x, fk)

    def auto(x: Tensor, k: Tensor) -> Tensor:
        return conv2d(x, k, padding=p, stride=s, data_format=data_format)

    methods["auto-compiled"] = partial(compiler.compile(auto), x, k)
    return methods


def _hybridized(backend: ArrayBackend, w: Workload, x: Tensor,
                k: Tensor) -> dict[str, Callable[[], object]]:  # fmt: skip
    """MXNet compiles blocks, not functions: a hybridized ``gluon.nn.Conv2D`` against a
    hybridized ``chanconv.backends.mxnet.Conv2D``, both holding the kernel k (once
    hybridized, chanconv's block runs MXNet's own Convolution in the graph)."""
    mx = backend.fw  # type: ignore[attr-defined]
    from chanconv.backends.mxnet import Conv2D
    from chanconv.layers import LayerSpec

    co, ci, kh, kw = w.kernel_shape
    nx, nk = x.as_nd_ndarray(), k.as_nd_ndarray()
    theirs = mx.gluon.nn.Conv2D(co, (kh, kw), strides=w.stride, padding=w.padding,
                                in_channels=ci, use_bias=False)  # fmt: skip
    theirs.initialize()
    ours = Conv2D(LayerSpec(ci, co, (kh, kw), stride=w.stride, padding=w.padding, bias=False))
    for block in (theirs, ours):
        block.weight.set_data(nk)
        block.hybridize(static_alloc=True, static_shape=True)
    return {"framework-compiled": partial(theirs, nx), "auto-compiled": partial(ours, nx)}


def training_calls(
    backend: ArrayBackend, w: Workload, x: Tensor, k: Tensor, dy: Tensor
) -> list[tuple[str, Callable[[], object]]]:
    """Forward and backward (the gradients of x and k for an incoming gradient dy): first
    the framework's own convolution under its own autograd (the reference), then chanconv's
    ``auto`` under the same autograd; NumPy, which has none, runs ``conv2d`` and
    ``conv2d_vjp`` against torch's, as in the forward table."""
    p, s = w.padding, w.stride
    if backend.name == "numpy":
        import torch

        tx, tk, tdy = (torch.as_tensor(a).requires_grad_(i < 2) for i, a in enumerate((x, k, dy)))

        def torch_train() -> object:
            y = torch.nn.functional.conv2d(tx, tk, padding=p, stride=s)
            return torch.autograd.grad(y, (tx, tk), tdy)

        def numpy_train() -> object:
            conv2d(x, k, padding=p, stride=s)
            return conv2d_vjp(x, k, dy, padding=p, stride=s)

        return [("torch-call", torch_train), ("auto", numpy_train)]
    if backend.name == "torch":
        torch = backend.fw  # type: ignore[attr-defined]
        f = torch.nn.functional.conv2d
        tx, tk = x.detach().requires_grad_(), k.detach().requires_grad_()

        def own() -> object:
            return torch.autograd.grad(f(tx, tk, padding=p, stride=s), (tx, tk), dy)

        def ours() -> object:
            return torch.autograd.grad(conv2d(tx, tk, padding=p, stride=s), (tx, tk), dy)

        return [("framework-call", own), ("auto", ours)]
    if backend.name == "tensorflow":
        tf = backend.fw  # type: ignore[attr-defined]
        pads = ((0, 0), (p, p), (p, p), (0, 0))
        fx, fk = tf.transpose(x, (0, 2, 3, 1)), tf.transpose(k, (2, 3, 1, 0))
        fdy = tf.transpose(dy, (0, 2, 3, 1))

        def tf_own() -> object:
            with tf.GradientTape() as tape:
                tape.watch([fx, fk])
                y = tf.nn.conv2d(fx, fk, strides=s, padding=pads)
            return tape.gradient(y, [fx, fk], output_gradients=fdy)

        def tf_ours() -> object:
            with tf.GradientTape() as tape:
                tape.watch([x, k])
                y = conv2d(x, k, padding=p, stride=s)
            return tape.gradient(y, [x, k], output_gradients=dy)

        return [("framework-call", tf_own), ("auto", tf_ours)]
    if backend.name == "mxnet":
        mx = backend.fw  # type: ignore[attr-defined]
        co, _, kh, kw = w.kernel_shape
        nx, nk, ndy = x.as_nd_ndarray().copy(), k.as_nd_ndarray().copy(), dy.as_nd_ndarray()
        cx, ck = x.copy(), k.copy()
        for a in (nx, nk, cx, ck):
            a.attach_grad()

        def mx_own() -> object:
            with mx.autograd.record():
                y = mx.nd.Convolution(nx, nk, kernel=(kh, kw), pad=(p, p), stride=(s, s),
                                      num_filter=co, no_bias=True)  # fmt: skip
            y.backward(ndy)
            nk.grad.wait_to_read()
            return nx.grad

        def mx_ours() -> object:
            with mx.autograd.record():
                y = conv2d(cx, ck, padding=p, stride=s)
            y.backward(dy)
            ck.grad.wait_to_read()
            return cx.grad

        return [("framework-call", mx_own), ("auto", mx_ours)]
    return _helper_training(backend, w, x, k, dy)


def _helper_training(
    backend: ArrayBackend, w: Workload, x: Tensor, k: Tensor, dy: Tensor
) -> list[tuple[str, Callable[[], object]]]:
    """Any other backend with its own convolution: gradients by the framework's autograd
    as its conformance helpers take them (``FrameworkHelpers.gradients``, eager; JAX:
    ``jax.grad``) of ``sum(conv * dy)``, the framework's own convolution against
    chanconv's ``auto``. Both pay the helpers' copy of the two gradients to NumPy."""
    if not (has_native(backend) and implements(backend, ConformanceHelpers)):
        return []
    helpers = cast(ConformanceHelpers, backend).conformance_helpers()
    native, stride, pads = cast(NativeConv2d, backend), (w.stride,) * 2, (w.padding,) * 2

    def own(x: Tensor, k: Tensor) -> Tensor:
        y = native.conv2d_native(x, k, stride=stride, padding=pads, dilation=(1, 1), groups=1)
        return backend.sum(y * dy)

    def ours(x: Tensor, k: Tensor) -> Tensor:
        return backend.sum(conv2d(x, k, padding=w.padding, stride=w.stride) * dy)

    def same(t: Tensor) -> Tensor:
        return t

    return [("framework-call", partial(helpers.gradients, same, own, [x, k])),
            ("auto", partial(helpers.gradients, same, ours, [x, k]))]  # fmt: skip


def d2l_loops(backend: ArrayBackend, x: Tensor, k: Tensor) -> Tensor:
    """The book's teaching code: corr2d with a Python loop over output pixels, summed over
    input channels, stacked over output channels. Written with item assignment where the
    framework allows it, as the book does, and with stacking where it does not."""
    xs, ks = backend.to_numpy(x), backend.to_numpy(k)
    import numpy

    def corr2d(a: Any, b: Any) -> Any:
        h, w = b.shape
        y = numpy.zeros((a.shape[0] - h + 1, a.shape[1] - w + 1), dtype=a.dtype)
        for i in range(y.shape[0]):
            for j in range(y.shape[1]):
                y[i, j] = (a[i : i + h, j : j + w] * b).sum()
        return y

    out = [sum(corr2d(xc, kc) for xc, kc in zip(xs, kk, strict=True)) for kk in ks]
    return numpy.stack(out)


def sgemm_gflops(backend: ArrayBackend, n: int = 2048, budget: float = 1.0) -> float:
    rng = random.Random(0)
    a = _random(backend, (n, n), rng)
    b = _random(backend, (n, n), rng)

    def run() -> None:
        _sync(backend, backend.matmul(a, b))

    return 2 * n**3 / _best_time(run, budget, 10) / 1e9


def _output_shape(w: Workload) -> tuple[int, int, int, int]:
    shape = conv2d_cost(
        w.input_shape, w.kernel_shape, padding=w.padding, stride=w.stride
    ).output_shape
    return (shape[0], shape[1], shape[2], shape[3])


def run_benchmarks(
    backend_name: str,
    *,
    quick: bool = False,
    training: bool = True,
    progress: Callable[[str], None] | None = None,
    only: Sequence[str] = (),
) -> Report:
    backend = get_adapter(backend_name)
    say = progress or (lambda _: None)
    budget, max_repeats = (0.05, 3) if quick else (1.0, 20)
    size = 512 if quick else 2048
    own = sgemm_gflops(backend, size, budget)
    blas = own if backend.name == "numpy" else sgemm_gflops(get_adapter("numpy"), size, budget)
    peak = max(own, blas)
    report = Report(backend.name, backend.version(), f"{platform.machine()}, "
                    f"{os.cpu_count()} cores", peak, own, im2col_limit())  # fmt: skip
    say(
        f"{backend.name} {backend.version()}: SGEMM peak {peak:.1f} GFLOP/s "
        f"({backend.name}'s own matmul {own:.1f})"
    )
    rng = random.Random(0)
    workloads = [w for w in (QUICK_WORKLOADS if quick else WORKLOADS)
                 if not only or w.name in only]  # fmt: skip
    for w in workloads:
        x, k = _random(backend, w.input_shape, rng), _random(backend, w.kernel_shape, rng)
        references = framework_conv(backend, w, x, k)
        methods: dict[str, Callable[[], object]] = dict(references)
        algorithms = ["auto", "direct", "im2col"] + (["native"] if has_native(backend) else [])
        for algorithm in [*algorithms, "fourier"]:
            methods[algorithm] = partial(conv2d, x, k, padding=w.padding, stride=w.stride,
                                         algorithm=algorithm)  # fmt: skip
        methods.update(_kept_spectrum(backend, w, x, k))
        methods.update(_channels_last(backend, w, x, k))
        if not quick or w is workloads[0]:
            # A smoke run compiles once: torch.compile takes seconds per graph.
            methods.update(_compiled_methods(backend, w, x, k))
        notes = {}
        for method in COMPILED_METHODS:
            if method in methods:
                notes[method] = (
                    f"first call (compiling) {_first_call(backend, methods[method]):.2f} s"
                )
        growth = {}
        for method, call in methods.items():
            # One call alone for memory, the first in a clean state.
            with _memory_probe(backend) as memory:
                _run_synced(backend, call)
            growth[method] = memory.growth
        runs: dict[str, Callable[[], object]] = {
            m: partial(_run_synced, backend, call) for m, call in methods.items()
        }
        if backend.name == "numpy" and references:
            # torch beside NumPy: each library's idle threads spin for a while after a call
            # (OpenBLAS for about 0.1 s) and would take a core from the other, so the two
            # are timed apart, with a pause between, not interleaved.
            torch_runs = {m: runs.pop(m) for m, _ in references}
            best = _best_times(torch_runs, budget * len(torch_runs), max_repeats)
            time.sleep(0.5)
            best.update(_best_times(runs, budget * len(runs), max_repeats))
        else:
            best = _best_times(runs, budget * len(runs), max_repeats)
        names = [m for m, _ in references]
        reference_seconds = best[names[0]] if references else None
        for method, seconds in best.items():
            against = reference_of(method, names, list(best))
            m = _measure(w, backend, method, seconds, peak,
                         None if against is None else best[against], growth[method],
                         notes.get(method, ""))  # fmt: skip
            m.reference = against or ""
            report.measurements.append(m)
            say(f"  {w.name:<22} {method:<18} {seconds * 1e3:10.3f} ms {m.note}".rstrip())
        trains: dict[str, Callable[[], object]] = {}
        if training and references:
            dy = _random(backend, _output_shape(w), rng)
            trains = {m: partial(_run_synced, backend, c)
                      for m, c in training_calls(backend, w, x, k, dy)}  # fmt: skip
        if trains:  # empty where the framework's autograd cannot be reached
            reference = next(iter(trains))
            if backend.name == "numpy":  # torch apart, as above
                best = _best_times({reference: trains.pop(reference)}, budget, max_repeats)
                time.sleep(0.5)
                best.update(_best_times(trains, budget * len(trains), max_repeats))
            else:
                best = _best_times(trains, budget * len(trains), max_repeats)
            for method, seconds in best.items():
                m = _measure(w, backend, method, seconds, peak, best[reference], None,
                             flops=3 * w.flops)  # fmt: skip
                m.mode, m.reference = "training", reference
                report.measurements.append(m)
                say(f"  {w.name:<22} {method + ' fwd+bwd':<18} {seconds * 1e3:10.3f} ms")
        if w.loop_baseline:
            n = w.input_shape[0]
            start = time.perf_counter()
            d2l_loops(backend, x[0], k)
            seconds = (time.perf_counter() - start) * n
            note = f"one image timed, times {n}" if n > 1 else ""
            m = _measure(w, backend, "d2l-loops", seconds, peak, reference_seconds, None, note)
            m.reference = names[0] if references else ""
            report.measurements.append(m)
            say(f"  {w.name:<22} {'d2l-loops':<18} {seconds * 1e3:10.3f} ms {note}")
    return report


def _kept_spectrum(
    backend: ArrayBackend, w: Workload, x: Tensor, k: Tensor
) -> dict[str, Callable[[], object]]:
    """The fourier algorithm with the kernel's spectrum kept from an earlier
    call, as a layer in inference keeps it (``chanconv.fourier.SpectrumCache``): the
    "fourier-kept" column."""
    from chanconv.fourier import SpectrumCache

    cache = SpectrumCache()
    call = partial(conv2d, x, k, padding=w.padding, stride=w.stride, algorithm="fourier",
                   spectrum_cache=cache)  # fmt: skip
    return {"fourier-kept": call}


def _run_synced(backend: ArrayBackend, call: Callable[[], object]) -> None:
    _sync(backend, call())


def _first_call(backend: ArrayBackend, call: Callable[[], object]) -> float:
    """Seconds of a compiled call's first run, which compiles it."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        # torch.compile warns that it traces through chanconv's lru_cache'd geometry
        # helpers; their results depend on shapes only, which it guards on.
        warnings.simplefilter("ignore", UserWarning)
        _run_synced(backend, call)
    return time.perf_counter() - start


def _measure(w: Workload, backend: ArrayBackend, method: str, seconds: float, peak: float,
             reference: float | None, memory: int | None,
             note: str = "", flops: int | None = None) -> Measurement:  # fmt: skip
    """One row; training counts three convolutions' FLOPs (forward, dX, dK)."""
    gflops = (w.flops if flops is None else flops) / seconds / 1e9
    ratio = None if reference is None else reference / seconds
    extra = 0 if memory is None else max(0, memory - w.result_bytes)  # None: not measured
    return Measurement(w.name, backend.name, method, seconds, gflops, gflops / peak, ratio,
                       memory or 0, extra, note)  # fmt: skip


def write_report(report: Report, out: Path) -> list[Path]:
    """JSON and a PNG chart (GFLOP/s per workload and method) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"bench-{report.backend}.json"
    json_path.write_text(report.to_json())
    return [json_path, _chart(report, out / f"bench-{report.backend}.png")]


def _format_ratio(ratio: float | None) -> str:
    """Two decimals, or two significant digits below 0.01 (fourier on the seed workload),
    where two decimals would print 0.00."""
    if ratio is None:
        return ""
    return f"{ratio:.2f}" if ratio >= 0.01 else f"{ratio:.1e}"


def _gflops_bars(
    ax: Any, report: Report, workloads: list[str], methods: Sequence[str], peak: float
) -> None:
    """Grouped bars of forward GFLOP/s, one group per workload, one bar per method the
    report has, and the SGEMM peak as a dashed line."""
    forward = [m for m in report.measurements if m.mode == "forward"]
    present = [m for m in methods if any(x.method == m for x in forward)]
    width = 0.8 / len(present)
    gflops = {(m.workload, m.method): m.gflops for m in forward}
    for i, method in enumerate(present):
        values = [gflops.get((w, method), 0.0) for w in workloads]
        ax.bar([j + i * width for j in range(len(workloads))], values, width, label=method)
    ax.axhline(peak, color="black", linestyle="--", linewidth=1,
               label=f"SGEMM peak {peak:.0f}")  # fmt: skip
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(workloads))], workloads, fontsize=8)


def _chart(report: Report, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    workloads = list(dict.fromkeys(m.workload for m in report.measurements))
    methods = ("framework-compiled", "framework-call", "torch-call", "framework-nchw",
               "auto-compiled", "auto", "auto-nhwc", "direct", "im2col", "native", "fourier",
               "fourier-kept")  # fmt: skip
    _gflops_bars(ax, report, workloads, methods, report.sgemm_gflops)
    ax.set_ylabel("GFLOP/s (float32)")
    ax.set_title(f"chanconv on {report.backend} {report.framework_version} ({report.machine})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def format_table(report: Report) -> str:
    lines = [f"{report.backend} {report.framework_version}, SGEMM peak "
             f"{report.sgemm_gflops:.1f} GFLOP/s ({report.backend}'s own matmul "
             f"{report.framework_sgemm_gflops:.1f}), im2col limit "
             f"{report.im2col_limit_bytes / 2**20:g} MiB", "",
             "| workload | method | pass | ms | GFLOP/s | of peak | vs framework conv "
             "| against | peak memory | beyond the result | note |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: "
             "| --- |"]  # fmt: skip
    for m in report.measurements:
        ratio = "" if m.ratio_to_framework is None else f"{m.ratio_to_framework:.2f}x"
        measured = m.method != "d2l-loops" and m.mode == "forward"
        memory, extra = (f"{b / 2**20:.1f} MiB" if measured else ""
                         for b in (m.peak_memory_bytes, m.extra_memory_bytes))  # fmt: skip
        lines.append(f"| {m.workload} | {m.method} | {m.mode} | {m.seconds * 1e3:.3f} | "
                     f"{m.gflops:.1f} | "
                     f"{m.peak_fraction:.0%} | {ratio} | {m.reference} | {memory} | {extra} | "
                     f"{m.note} |")  # fmt: skip
    return "\n".join(lines)


def load_report(path: Path) -> Report:
    data = json.loads(path.read_text())
    measurements = [Measurement(**m) for m in data.pop("measurements")]
    return Report(**data, measurements=measurements)


def merge_reports(folder: Path) -> list[Path]:
    """``python -m chanconv bench-report FOLDER``: every ``bench-<backend>.json`` in FOLDER
    merged into ``FOLDER/summary.md`` (auto against each framework's own convolution, and
    every method's ratio) and ``FOLDER/summary.png`` (one panel per backend)."""
    reports = [load_report(p) for p in sorted(folder.glob("bench-*.json"))]
    if not reports:
        raise ValueError(f"no bench-<backend>.json reports in {folder}: run the benchmarks first")
    order = {name: i for i, name in enumerate(("numpy", "torch", "tensorflow", "mxnet"))}
    reports.sort(key=lambda r: order.get(r.backend, len(order)))
    md = folder / "summary.md"
    md.write_text(summary_markdown(reports))
    return [md, _summary_chart(reports, folder / "summary.png")]


def machine_peak(reports: list[Report]) -> float:
    """The one SGEMM peak every merged table, fraction and chart uses: the fastest float32
    2048x2048 matmul any run measured, NumPy's or a framework's own, on this machine."""
    return max(r.sgemm_gflops for r in reports)


def _row(report: Report, workload: str, method: str, mode: str) -> Measurement | None:
    for m in report.measurements:
        if (m.workload, m.method, m.mode) == (workload, method, mode):
            return m
    return None


def summary_markdown(reports: list[Report]) -> str:
    """One table per backend: each method's forward ratio to the framework's own
    convolution (throughput; above 1 is faster; ``auto-compiled`` to the framework's
    compiled), ``auto``'s fraction of the SGEMM peak, and the same two figures for training
    (forward and backward)."""
    peak = machine_peak(reports)
    lines = [f"SGEMM peak: {peak:.1f} GFLOP/s (float32, the fastest 2048x2048 matmul of "
             "NumPy's and each framework's own, over these runs)", "",
             "| backend | version | its own matmul GFLOP/s |", "| --- | --- | ---: |"]  # fmt: skip
    lines += [f"| {r.backend} | {r.framework_version} | {r.framework_sgemm_gflops:.1f} |"
              for r in reports]  # fmt: skip
    for r in reports:
        reference = "torch's F.conv2d" if r.backend == "numpy" else "its own conv"
        forward = {m.method for m in r.measurements if m.mode == "forward"}
        methods = [
            m
            for m in (
                "auto",
                "im2col",
                "direct",
                "native",
                "fourier",
                "fourier-kept",
                "auto-nhwc",
                "auto-compiled",
            )
            if m in forward
        ]
        training = any(m.mode == "training" for m in r.measurements)
        head = [f"{m} fwd" + (f" (vs {PAIRED_REFERENCES[m]})" if m in PAIRED_REFERENCES else "")
                for m in methods] + ["auto fwd, of SGEMM peak"]  # fmt: skip
        head += ["auto fwd+bwd", "auto fwd+bwd, of SGEMM peak"] if training else []
        lines += ["", f"**{r.backend} {r.framework_version}**, ratios to {reference}:", "",
                  "| workload | " + " | ".join(head) + " |",
                  "| --- |" + " ---: |" * len(head)]  # fmt: skip
        workloads = dict.fromkeys(m.workload for m in r.measurements)
        for w in workloads:
            cells = []
            for method in methods:
                row = _row(r, w, method, "forward")
                ratio = None if row is None else row.ratio_to_framework
                cells.append(_format_ratio(ratio))
            auto = _row(r, w, "auto", "forward")
            cells.append("" if auto is None else f"{auto.gflops / peak:.0%}")
            if training:
                train = _row(r, w, "auto", "training")
                ratio = None if train is None else train.ratio_to_framework
                cells.append("" if ratio is None else f"{ratio:.2f}")
                cells.append("" if train is None else f"{train.gflops / peak:.0%}")
            lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _summary_chart(reports: list[Report], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    peak = machine_peak(reports)
    fig = Figure(figsize=(11, 2.6 * len(reports)))
    FigureCanvasAgg(fig)
    for row, report in enumerate(reports, start=1):
        ax = fig.add_subplot(len(reports), 1, row)
        workloads = [w for w in dict.fromkeys(m.workload for m in report.measurements)
                     if w != "seed"]  # fmt: skip
        reference = "torch-call" if report.backend == "numpy" else "framework-call"
        _gflops_bars(ax, report, workloads, (reference, "auto", "im2col", "direct"), peak)
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"{report.backend} {report.framework_version} (forward)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


@dataclass(frozen=True)
class RatioChange:
    workload: str
    method: str
    mode: str
    old: float
    new: float

    @property
    def change(self) -> float:
        """Relative change of the ratio to the framework's own convolution: -0.1 is 10%
        slower relative to the framework than before."""
        return self.new / self.old - 1


def compare_reports(old: Report, new: Report) -> list[RatioChange]:
    """Each workload's ratio to the framework's own convolution in both runs, for every
    (workload, method, mode) both have. Ratios, not times: two runs on a shared machine
    differ in speed, but each ratio is taken within one run."""
    if old.backend != new.backend:
        raise ValueError(
            f"cannot compare a {old.backend} report with a {new.backend} report: ratios are "
            "to each framework's own convolution"
        )

    def ratios(report: Report) -> dict[tuple[str, str, str], float]:
        return {(m.workload, m.method, m.mode): m.ratio_to_framework
                for m in report.measurements
                if m.ratio_to_framework is not None and m.ratio_to_framework > 0}  # fmt: skip

    before, after = ratios(old), ratios(new)
    return [RatioChange(*key, before[key], after[key]) for key in before if key in after]


def format_comparison(changes: list[RatioChange], threshold: float) -> tuple[str, bool]:
    """A markdown table of the changes, and whether any ratio dropped by more than
    ``threshold`` (0.1: more than 10%)."""
    lines = ["| workload | method | mode | old ratio | new ratio | change | |",
             "| --- | --- | --- | ---: | ---: | ---: | --- |"]  # fmt: skip
    failed = False
    for c in changes:
        drop = c.change < -threshold
        failed |= drop
        flag = f"dropped more than {threshold:.0%}" if drop else ""
        lines.append(f"| {c.workload} | {c.method} | {c.mode} | {c.old:.2f} | {c.new:.2f} | "
                     f"{c.change:+.1%} | {flag} |")  # fmt: skip
    if not changes:
        lines.append("| (no workload in common) | | | | | | |")
    return "\n".join(lines), failed


# --- Dask: larger than memory, on a cluster of worker processes -----------------------------


@dataclass(frozen=True)
class OutOfCoreWorkload:
    """A stack of images on disk, convolved chunk by chunk into a result on disk."""

    name: str
    input_shape: tuple[int, int, int, int]
    kernel_shape: tuple[int, int, int, int]
    padding: int
    #: the Dask chunks of the input: images, channels, rows, columns
    chunks: tuple[int, int, int, int]
    #: each worker process's memory limit (distributed pauses a worker at 80%, kills at 95%)
    worker_memory_bytes: int

    @property
    def flops(self) -> int:
        return conv2d_cost(self.input_shape, self.kernel_shape, padding=self.padding).forward_flops

    @property
    def input_bytes(self) -> int:
        return 4 * math.prod(self.input_shape)


#: The real run: 1700 images of 32x128x128 float32 (3.3 GiB) against 2 workers of 400 MiB,
#: over 4 times the cluster's memory; chunks of 8 images and half an image's rows, so halos
#: cross chunk borders.
OUT_OF_CORE = OutOfCoreWorkload("resnet-3x3-stack", (1700, 32, 128, 128), (32, 32, 3, 3), 1,
                                (8, 32, 64, 128), 400 * 2**20)  # fmt: skip
#: --quick (CI's smoke run): the same kind of layer, tiny: it proves the pipeline runs end
#: to end (disk, cluster, store, checks), not the memory bound.
QUICK_OUT_OF_CORE = OutOfCoreWorkload("resnet-3x3-stack-small", (16, 8, 32, 32), (8, 8, 3, 3),
                                      1, (4, 8, 16, 32), 400 * 2**20)  # fmt: skip


@dataclass
class OutOfCoreRun:
    workers: int
    seconds: float
    gflops: float
    #: CPU time the worker processes spent, all of them: on a shared machine the wall clock
    #: also counts the time other programs held the cores
    worker_cpu_seconds: float
    #: the largest resident size any worker process reached, sampled every 0.5 s
    peak_worker_memory_bytes: int
    #: workers that were restarted (killed) or paused during the run: must be none
    workers_lost: int
    workers_paused: int


@dataclass
class OutOfCoreReport:
    backend: str
    framework_version: str
    machine: str
    workload: OutOfCoreWorkload
    #: the NumPy backend on one in-memory chunk, in one worker process (one core): per
    #: second of the wall clock, and per second of that thread's CPU time
    numpy_in_memory_gflops: float
    numpy_in_memory_gflops_per_cpu_second: float
    runs: list[OutOfCoreRun] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        one, two = self.runs[0], self.runs[-1]
        return one.seconds / two.seconds

    def per_core_ratio(self, run: OutOfCoreRun) -> float:
        """Throughput per second of worker CPU time over NumPy's in memory per second of
        CPU time: what one core gives out of core against what it gives in memory."""
        per_cpu_second = self.workload.flops / run.worker_cpu_seconds / 1e9
        return per_cpu_second / self.numpy_in_memory_gflops_per_cpu_second

    def wall_clock_ratio(self, run: OutOfCoreRun) -> float:
        return run.gflops / run.workers / self.numpy_in_memory_gflops

    def to_json(self) -> str:
        data = asdict(self)
        data["speedup"] = self.speedup
        data["per_core_ratio"] = [self.per_core_ratio(r) for r in self.runs]
        data["wall_clock_ratio"] = [self.wall_clock_ratio(r) for r in self.runs]
        return json.dumps(data, indent=2)


class NpyFile:
    """A ``.npy`` file as an array Dask reads chunks from and stores chunks into. It is
    opened (memory-mapped) per access, in whichever worker process runs the task, so a task
    carries the path, never the data."""

    def __init__(self, path: str, shape: tuple[int, ...], dtype: str) -> None:
        self.path, self.shape, self.dtype = path, shape, dtype
        self.ndim = len(shape)

    def __getitem__(self, index: Any) -> Any:
        import numpy as np

        return np.array(np.load(self.path, mmap_mode="r")[index])

    def __setitem__(self, index: Any, value: Any) -> None:
        import numpy as np

        target = np.load(self.path, mmap_mode="r+")
        target[index] = value
        target.flush()

    @classmethod
    def create(cls, path: Path, shape: tuple[int, ...], dtype: str) -> NpyFile:
        import numpy as np

        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
        return cls(str(path), shape, dtype)


def _write_random_stack(path: Path, w: OutOfCoreWorkload) -> NpyFile:
    """The input, written image block by image block: never whole in this process."""
    import numpy as np

    store = NpyFile.create(path, w.input_shape, "float32")
    rng = np.random.default_rng(0)
    step = w.chunks[0] * 8
    for start in range(0, w.input_shape[0], step):
        stop = min(start + step, w.input_shape[0])
        block = rng.standard_normal((stop - start, *w.input_shape[1:]), dtype=np.float32)
        store[start:stop] = block
    return store


def _worker_rss() -> int:
    psutil: Any = importlib.import_module("psutil")  # distributed's own dependency
    return int(psutil.Process().memory_info().rss)


def _worker_cpu_seconds() -> float:
    psutil: Any = importlib.import_module("psutil")
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _numpy_chunk_gflops(w: OutOfCoreWorkload, seconds: float = 2.0) -> tuple[float, float]:
    """The NumPy backend on one in-memory chunk of the same layer: the per-core yardstick,
    run inside a worker so it has the worker's one BLAS thread (which computes in the
    calling thread: its CPU time is the call's). Best of repeated calls, by the wall clock
    and by CPU time."""
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.standard_normal((w.chunks[0], *w.input_shape[1:]), dtype=np.float32)
    k = rng.standard_normal(w.kernel_shape, dtype=np.float32)
    conv2d(x, k, padding=w.padding)  # warm
    best, best_cpu, spent = math.inf, math.inf, 0.0
    while spent < seconds:
        start, start_cpu = time.perf_counter(), time.thread_time()
        conv2d(x, k, padding=w.padding)
        took, took_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
        best, best_cpu, spent = min(best, took), min(best_cpu, took_cpu), spent + took
    flops = conv2d_cost(x.shape, w.kernel_shape, padding=w.padding).forward_flops
    return flops / best / 1e9, flops / best_cpu / 1e9


def _run_on_cluster(w: OutOfCoreWorkload, source: NpyFile, target: NpyFile, workers: int,
                    say: Callable[[str], None]) -> tuple[OutOfCoreRun, Any]:  # fmt: skip
    import numpy as np

    # Untyped libraries, reached as Any: mypy checks the core without them installed.
    da: Any = importlib.import_module("dask.array")
    distributed: Any = importlib.import_module("distributed")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=w.worker_memory_bytes, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:  # fmt: skip
        baseline = client.submit(_numpy_chunk_gflops, w, pure=False).result() if workers == 1 \
            else None  # fmt: skip
        addresses = set(client.scheduler_info()["workers"])
        peak, paused, stop = [0], set(), threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], *client.run(_worker_rss).values())
                    for address, info in client.scheduler_info()["workers"].items():
                        if info.get("status") == "paused":
                            paused.add(address)
                except Exception:  # a worker going away shows in the count of workers
                    pass
                stop.wait(0.5)

        x = da.from_array(source, chunks=w.chunks, lock=False, asarray=True,
                          meta=np.empty((0, 0, 0, 0), "float32"))  # fmt: skip
        k = np.random.default_rng(2).standard_normal(w.kernel_shape).astype("float32")
        y = conv2d(x, k, padding=w.padding)  # lazy
        sampler = threading.Thread(target=sample, daemon=True)
        cpu_before = sum(client.run(_worker_cpu_seconds).values())
        sampler.start()
        start = time.perf_counter()
        da.store(y, target, lock=False)
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        cpu = sum(client.run(_worker_cpu_seconds).values()) - cpu_before
        lost = len(addresses - set(client.scheduler_info()["workers"]))
    run = OutOfCoreRun(workers, seconds, w.flops / seconds / 1e9, cpu, peak[0], lost,
                       len(paused))  # fmt: skip
    say(f"  {workers} worker(s): {seconds:.1f} s, {run.gflops:.2f} GFLOP/s, peak worker "
        f"memory {peak[0] / 2**20:.0f} MiB, lost {lost}, paused {len(paused)}, worker "
        f"CPU {cpu:.1f} s")  # fmt: skip
    return run, baseline


def run_out_of_core(*, quick: bool = False, folder: Path | None = None,
                    progress: Callable[[str], None] | None = None) -> OutOfCoreReport:  # fmt: skip
    """The Dask benchmark: the input, on disk, at least 4 times the cluster's memory, read
    chunk by chunk, convolved and stored to a result on disk, on 1 then 2 worker
    processes. The result is checked on a few images against the in-memory NumPy backend."""
    import tempfile

    import numpy as np

    backend = get_adapter("dask")
    w = QUICK_OUT_OF_CORE if quick else OUT_OF_CORE
    say = progress or (lambda _: None)
    say(f"dask {backend.version()}: {w.name}, input {w.input_bytes / 2**30:.2f} GiB on disk, "
        f"workers of {w.worker_memory_bytes / 2**20:.0f} MiB")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        source = _write_random_stack(Path(scratch) / "input.npy", w)
        out_shape = conv2d_cost(w.input_shape, w.kernel_shape, padding=w.padding).output_shape
        report: OutOfCoreReport | None = None
        for workers in (1, 2):
            target = NpyFile.create(Path(scratch) / f"output-{workers}.npy", out_shape,
                                    "float32")  # fmt: skip
            run, baseline = _run_on_cluster(w, source, target, workers, say)
            if report is None:
                assert baseline is not None
                report = OutOfCoreReport("dask", backend.version(), f"{platform.machine()}, "
                                         f"{os.cpu_count()} cores", w, *baseline)  # fmt: skip
                say(f"  NumPy backend in memory, one core: {baseline[0]:.2f} GFLOP/s, "
                    f"{baseline[1]:.2f} per CPU second")  # fmt: skip
            report.runs.append(run)
            # Spot check: first and last images against the NumPy backend in memory.
            k = np.random.default_rng(2).standard_normal(w.kernel_shape).astype("float32")
            for images in (slice(0, 2), slice(w.input_shape[0] - 2, w.input_shape[0])):
                want = conv2d(source[images], k, padding=w.padding)
                if not np.allclose(target[images], want, rtol=1e-4, atol=1e-4):
                    raise AssertionError(f"dask result differs from NumPy's on images {images}")
            Path(target.path).unlink()
    assert report is not None
    return report


def format_out_of_core(report: OutOfCoreReport) -> str:
    w = report.workload
    lines = [
        f"dask {report.framework_version} on {report.machine}: {w.name}, input "
        f"{w.input_shape} float32 = {w.input_bytes / 2**30:.2f} GiB on disk, kernel "
        f"{w.kernel_shape}, padding {w.padding}, chunks {w.chunks}",
        f"NumPy backend in memory, one core: {report.numpy_in_memory_gflops:.2f} GFLOP/s "
        f"({report.numpy_in_memory_gflops_per_cpu_second:.2f} per CPU second)",
        "",
        "| workers | memory limit (total) | input / limit | time (s) | GFLOP/s | worker CPU (s) "
        "| per core vs NumPy (CPU time) | (wall clock) | peak worker memory | lost | paused |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report.runs:
        total = w.worker_memory_bytes * r.workers
        lines.append(
            f"| {r.workers} | {total / 2**20:.0f} MiB | {w.input_bytes / total:.1f}x "
            f"| {r.seconds:.1f} | {r.gflops:.2f} | {r.worker_cpu_seconds:.1f} "
            f"| {report.per_core_ratio(r):.2f}x | {report.wall_clock_ratio(r):.2f}x "
            f"| {r.peak_worker_memory_bytes / 2**20:.0f} MiB | {r.workers_lost} "
            f"| {r.workers_paused} |"
        )
    lines.append(f"\nspeed-up 1 -> 2 workers: {report.speedup:.2f}x")
    return "\n".join(lines)


def write_out_of_core(report: OutOfCoreReport, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "out-of-core-dask.json"
    path.write_text(report.to_json() + "\n")
    return path
