"""Benchmarks: chanconv's algorithms against each framework's own convolution, in one run.

``python -m chanconv bench [--backend NAME] [--quick] [--out DIR]`` and ``nox -s bench``.
Every figure is a ratio taken in the same process: throughput relative to the framework's
own convolution, and to the machine's SGEMM peak as that framework's matmul reaches it.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import platform
import random
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

from chanconv.algorithms import has_native, im2col_limit
from chanconv.cost import conv2d_cost
from chanconv.operations import conv2d
from chanconv.protocol import ArrayBackend, Compiler, NativeConv2d, Tensor, implements
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
    """Wait for the result: MXNet and JAX compute asynchronously."""
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
    (prepared here, outside the timing): the reference every ratio is taken against. NumPy
    has none: it is compared with torch's, when torch is installed beside it. TensorFlow's
    CPU convolution takes NHWC only, so its NCHW call (the same data chanconv is given,
    transposed in and out) is timed too, as a second row."""
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


def _compiled_methods(
    backend: ArrayBackend, w: Workload, x: Tensor, k: Tensor
) -> dict[str, Callable[[], object]]:
    """chanconv's ``auto`` compiled by the framework (JAX: under ``jax.jit``)."""
    if not implements(backend, Compiler):
        return {}

    def auto(x: Tensor, k: Tensor) -> Tensor:
        return conv2d(x, k, padding=w.padding, stride=w.stride)

    return {"auto-compiled": partial(cast(Compiler, backend).compile(auto), x, k)}


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


def run_benchmarks(
    backend_name: str,
    *,
    quick: bool = False,
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
    for w in QUICK_WORKLOADS if quick else WORKLOADS:
        if only and w.name not in only:
            continue
        x, k = _random(backend, w.input_shape, rng), _random(backend, w.kernel_shape, rng)
        references = framework_conv(backend, w, x, k)
        methods: dict[str, Callable[[], object]] = dict(references)
        algorithms = ["auto", "direct", "im2col"] + (["native"] if has_native(backend) else [])
        for algorithm in [*algorithms, "fourier"]:
            methods[algorithm] = partial(conv2d, x, k, padding=w.padding, stride=w.stride,
                                         algorithm=algorithm)  # fmt: skip
        methods.update(_kept_spectrum(backend, w, x, k))
        methods.update(_compiled_methods(backend, w, x, k))
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
        reference_seconds = best[references[0][0]] if references else None
        for method, seconds in best.items():
            report.measurements.append(
                _measure(w, backend, method, seconds, peak, reference_seconds, growth[method])
            )
            say(f"  {w.name:<22} {method:<14} {seconds * 1e3:10.3f} ms")
        if w.loop_baseline:
            n = w.input_shape[0]
            start = time.perf_counter()
            d2l_loops(backend, x[0], k)
            seconds = (time.perf_counter() - start) * n
            note = f"one image timed, times {n}" if n > 1 else ""
            report.measurements.append(
                _measure(w, backend, "d2l-loops", seconds, peak, reference_seconds, None, note)
            )
            say(f"  {w.name:<22} {'d2l-loops':<14} {seconds * 1e3:10.3f} ms {note}")
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


def _measure(w: Workload, backend: ArrayBackend, method: str, seconds: float, peak: float,
             reference: float | None, memory: int | None,
             note: str = "") -> Measurement:  # fmt: skip
    gflops = w.flops / seconds / 1e9
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


def _gflops_bars(ax: Any, report: Report, workloads: list[str], methods: Sequence[str]) -> None:
    """Grouped bars of GFLOP/s, one group per workload, one bar per method the report has,
    and the SGEMM peak as a dashed line."""
    present = [m for m in methods if any(x.method == m for x in report.measurements)]
    width = 0.8 / len(present)
    gflops = {(m.workload, m.method): m.gflops for m in report.measurements}
    for i, method in enumerate(present):
        values = [gflops.get((w, method), 0.0) for w in workloads]
        ax.bar([j + i * width for j in range(len(workloads))], values, width, label=method)
    ax.axhline(report.sgemm_gflops, color="black", linestyle="--", linewidth=1,
               label=f"SGEMM peak {report.sgemm_gflops:.0f}")  # fmt: skip
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(workloads))], workloads, fontsize=8)


def _chart(report: Report, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    workloads = list(dict.fromkeys(m.workload for m in report.measurements))
    methods = ("framework-compiled", "framework-call", "torch-call", "framework-nchw",
               "auto-compiled", "auto", "direct", "im2col", "native", "fourier",
               "fourier-kept")  # fmt: skip
    _gflops_bars(ax, report, workloads, methods)
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
             "| workload | method | ms | GFLOP/s | of peak | vs framework conv | peak memory "
             "| beyond the result |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for m in report.measurements:
        ratio = "" if m.ratio_to_framework is None else f"{m.ratio_to_framework:.2f}x"
        memory, extra = (f"{b / 2**20:.1f} MiB" if m.method != "d2l-loops" else ""
                         for b in (m.peak_memory_bytes, m.extra_memory_bytes))  # fmt: skip
        lines.append(f"| {m.workload} | {m.method} | {m.seconds * 1e3:.3f} | {m.gflops:.1f} | "
                     f"{m.peak_fraction:.0%} | {ratio} | {memory} | {extra} |")  # fmt: skip
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


def _ratio(report: Report, workload: str, method: str) -> float | None:
    for m in report.measurements:
        if m.workload == workload and m.method == method:
            return m.ratio_to_framework
    return None


def summary_markdown(reports: list[Report]) -> str:
    """Ratios to each framework's own convolution (throughput; above 1 is faster), one
    column per backend and method."""
    methods = ("auto", "im2col", "direct", "native", "fourier", "fourier-kept")
    workloads = list(dict.fromkeys(m.workload for r in reports for m in r.measurements))
    head = [f"{r.backend} {method}" for r in reports for method in methods
            if any(m.method == method for m in r.measurements)]  # fmt: skip
    lines = ["| backend | version | SGEMM peak (own matmul) GFLOP/s |", "| --- | --- | ---: |"]
    lines += [f"| {r.backend} | {r.framework_version} | {r.sgemm_gflops:.1f} "
              f"({r.framework_sgemm_gflops:.1f}) |" for r in reports]  # fmt: skip
    lines += ["", "| workload | " + " | ".join(head) + " |",
              "| --- |" + " ---: |" * len(head)]  # fmt: skip
    for w in workloads:
        cells = []
        for r in reports:
            for method in methods:
                if any(m.method == method for m in r.measurements):
                    ratio = _ratio(r, w, method)
                    # Below 0.01 (fourier on the seed) two decimals would print 0.00.
                    cells.append("" if ratio is None else f"{ratio:.2f}" if ratio >= 0.01
                                 else f"{ratio:.1e}")  # fmt: skip
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _summary_chart(reports: list[Report], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 2.6 * len(reports)))
    FigureCanvasAgg(fig)
    for row, report in enumerate(reports, start=1):
        ax = fig.add_subplot(len(reports), 1, row)
        workloads = [w for w in dict.fromkeys(m.workload for m in report.measurements)
                     if w != "seed"]  # fmt: skip
        reference = "torch-call" if report.backend == "numpy" else "framework-call"
        _gflops_bars(ax, report, workloads, (reference, "auto", "im2col", "direct"))
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"{report.backend} {report.framework_version}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
