"""``python -m chanconv check``: a quick conformance check of the backends installed here.

For each backend it runs the section's examples, which must give the book's numbers
exactly, and a few hundred seeded random cases of ``corr2d``, ``corr2d_multi_in``,
``corr2d_multi_in_out``, ``corr2d_multi_in_out_1x1`` and ``conv2d`` (random shapes, stride,
padding, dilation, groups and bias; ``conv2d`` by every algorithm the backend has), in
float32 and float64, through chanconv's public functions on the backend's own tensors. Each
result is compared with ``chanconv.tools.oracle``, plain float64 loops that share no code with
the rest of chanconv.

An output element passes when ``|result - oracle| <= RTOL[dtype] * scale + ATOL[dtype]``,
``scale`` being the sum of the absolute values of the terms it adds up: a few units of the
dtype's rounding per term. The check reports the worst ratio of error to that tolerance
(pass: at most 1) and the worst absolute error.

``--thorough`` adds the *edge grid* (``edge_cases``): every combination of the
geometries where framework kernels have gone wrong (an output extent of 1, a stride larger
than the input, a kernel as large as the padded input, batch 1 and > 1, one channel per
group, several groups, dilation with stride, asymmetric "same"), so a user on a new CPU
learns in a minute which (backend, algorithm, geometry) is wrong there. The report lists,
per backend, the framework-kernel workarounds its adapter declares (docs/known-bugs.md).

``--json FILE`` writes the results per operation and dtype, and the outputs themselves for a
fixed set of *shared inputs* (the same on every backend, whatever ``--cases`` and ``--seed``
say), from which ``chanconv.tools.matrix`` computes the largest difference between backends.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from chanconv.algorithms import has_native, set_im2col_limit
from chanconv.operations import (
    conv2d,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
)
from chanconv.protocol import ArrayBackend, NativeLimits, Tensor
from chanconv.registry import (
    adapters,
    backend_for,
    distribution,
    get_adapter,
    install_command,
    origin,
)
from chanconv.tools import oracle, reference
from chanconv.tools.inventory import is_installed

Array = npt.NDArray[np.float64]

OPERATIONS = ("corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1",
              "conv2d")  # fmt: skip
#: The section's examples, compared exactly with the book's numbers.
REFERENCE = "reference"
DTYPES = ("float32", "float64")
RTOL = {"float32": 1e-5, "float64": 1e-12}
ATOL = {"float32": 1e-6, "float64": 1e-14}
DEFAULT_CASES = 300
DEFAULT_SEED = 0
#: Shared inputs per operation: the same on every backend and in every run.
SHARED_PER_OPERATION = 2
#: Failures listed in the report (all are counted).
LISTED_FAILURES = 20
#: im2col's tiled code paths: a limit so small that every output row is its own tile.
TILED_IM2COL_LIMIT = 1
JSON_SCHEMA = 1


@dataclass(frozen=True)
class Case:
    """One set of inputs for one operation, exactly representable in float32."""

    operation: str
    label: str
    x: Array
    k: Array
    bias: Array | None = None
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] | str = 0
    dilation: int | tuple[int, int] = 1
    groups: int = 1
    shared: bool = False

    def describe(self) -> str:
        text = f"{self.operation} {self.label}: X {self.x.shape}, K {self.k.shape}"
        if self.operation != "conv2d":
            return text
        return (f"{text}, bias {'yes' if self.bias is not None else 'no'}, "
                f"stride={self.stride!r}, padding={self.padding!r}, "
                f"dilation={self.dilation!r}, groups={self.groups}")  # fmt: skip

    def oracle(self) -> tuple[Array, Array]:
        """(value, scale) in float64 from ``chanconv.tools.oracle``."""
        if self.operation == "conv2d":
            result = oracle.conv2d(self.x, self.k, self.bias, stride=self.stride,
                                   padding=self.padding, dilation=self.dilation,
                                   groups=self.groups)  # fmt: skip
        elif self.operation == "corr2d":
            result = oracle.corr2d(self.x, self.k)
        elif self.operation in ("corr2d_multi_in", REFERENCE) and self.k.ndim == 3:
            result = oracle.corr2d_multi_in(self.x, self.k)
        else:  # corr2d_multi_in_out, its 1x1 form, the reference's 3-output kernel
            result = oracle.corr2d_multi_in_out(self.x, self.k)
        return np.array(result[0], dtype=np.float64), np.array(result[1], dtype=np.float64)


def _values(rng: random.Random, shape: tuple[int, ...]) -> Array:
    count = math.prod(shape)
    data = np.array([rng.uniform(-1.0, 1.0) for _ in range(count)], dtype=np.float32)
    return data.astype(np.float64).reshape(shape)


def _pair_or_int(rng: random.Random, choices: Sequence[int]) -> int | tuple[int, int]:
    a, b = rng.choice(choices), rng.choice(choices)
    return a if a == b and rng.random() < 0.7 else (a, b)


def _conv2d_case(rng: random.Random, label: str, shared: bool) -> Case:
    groups = rng.choice((1, 1, 2, 3))
    ci, co = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
    kh, kw = rng.randint(1, 3), rng.randint(1, 3)
    stride, dilation = _pair_or_int(rng, (1, 1, 2, 3)), _pair_or_int(rng, (1, 1, 2))
    padding: int | tuple[int, int] | str = rng.choice((0, 1, 2, (0, 1), (2, 1), "same", "valid"))
    n = rng.choice((None, 1, 2, 3))
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    while True:  # an input the padded kernel fits in
        h = rng.randint(max(1, (kh - 1) * dh - 1), (kh - 1) * dh + 6)
        w = rng.randint(max(1, (kw - 1) * dw - 1), (kw - 1) * dw + 6)
        top, bottom, left, right = oracle.padding_amounts(h, w, kh, kw, stride, padding,
                                                          dilation)  # fmt: skip
        if h + top + bottom > (kh - 1) * dh and w + left + right > (kw - 1) * dw:
            break
    x = _values(rng, (ci, h, w) if n is None else (n, ci, h, w))
    k = _values(rng, (co, ci // groups, kh, kw))
    bias = _values(rng, (co,)) if rng.random() < 0.5 else None
    return Case("conv2d", label, x, k, bias, stride, padding, dilation, groups, shared)


def make_case(operation: str, label: str, rng: random.Random, shared: bool = False) -> Case:
    """A random case of ``operation`` drawn from ``rng``: small shapes, values in [-1, 1)."""
    if operation == "conv2d":
        return _conv2d_case(rng, label, shared)
    h, w = rng.randint(1, 7), rng.randint(1, 7)
    if operation == "corr2d_multi_in_out_1x1":
        kh = kw = 1
    else:
        kh, kw = rng.randint(1, min(h, 4)), rng.randint(1, min(w, 4))
    ci, co = rng.randint(1, 4), rng.randint(1, 4)
    if operation == "corr2d":
        x_shape: tuple[int, ...] = (h, w)
        k_shape: tuple[int, ...] = (kh, kw)
    elif operation == "corr2d_multi_in":
        x_shape, k_shape = (ci, h, w), (ci, kh, kw)
    else:
        x_shape, k_shape = (ci, h, w), (co, ci, kh, kw)
    return Case(operation, label, _values(rng, x_shape), _values(rng, k_shape), shared=shared)


def reference_cases() -> list[Case]:
    """The section's two examples: [[56, 72], [104, 120]] and the 3-output-channel result."""
    x, k, k3 = (np.array(v, dtype=np.float64) for v in (reference.X, reference.K, reference.K3))
    return [Case(REFERENCE, "corr2d_multi_in", x, k, shared=True),
            Case(REFERENCE, "corr2d_multi_in_out", x, k3, shared=True)]  # fmt: skip


def make_cases(count: int = DEFAULT_CASES, seed: int = DEFAULT_SEED) -> list[Case]:
    """The section's examples, the shared inputs, then ``count`` random cases dealt to the
    operations in turn. Each case has its own seed, so a longer run starts with the same
    cases as a shorter one."""
    cases = reference_cases()
    for operation in OPERATIONS:
        for i in range(SHARED_PER_OPERATION):
            rng = random.Random(f"chanconv-shared:{operation}:{i}")
            cases.append(make_case(operation, f"shared{i}", rng, shared=True))
    for i in range(count):
        operation = OPERATIONS[i % len(OPERATIONS)]
        rng = random.Random(f"chanconv-check:{seed}:{i}")
        cases.append(make_case(operation, f"random{i}", rng))
    return cases


EDGE_BATCHES = (1, 3)
#: (input channels, groups): one channel, two channels, one channel per group of three.
EDGE_CHANNELS = ((1, 1), (2, 1), (3, 3))
EDGE_SIZES = ((1, 4), (7, 4))
EDGE_KERNELS = ((1, 1), (3, 2))
EDGE_STRIDES: tuple[int | tuple[int, int], ...] = (1, (1, 3), (3, 1), (5, 5))
EDGE_PADDINGS: tuple[int | str, ...] = (0, 1, "same")
EDGE_DILATIONS: tuple[int | tuple[int, int], ...] = (1, (2, 1))


def edge_cases() -> list[Case]:
    """The ``--thorough`` grid: every valid combination of the EDGE_* settings, two output
    channels per group, seeded values. It holds the TensorFlow 2.21 oneDNN case of
    docs/known-bugs.md (batch 3, one channel, output 1 wide, width stride 3)."""
    cases: list[Case] = []
    grid = itertools.product(EDGE_BATCHES, EDGE_CHANNELS, EDGE_SIZES, EDGE_KERNELS,
                             EDGE_STRIDES, EDGE_PADDINGS, EDGE_DILATIONS)  # fmt: skip
    for n, (ci, groups), (h, w), (kh, kw), stride, padding, dilation in grid:
        top, bottom, left, right = oracle.padding_amounts(h, w, kh, kw, stride, padding,
                                                          dilation)  # fmt: skip
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        if h + top + bottom <= (kh - 1) * dh or w + left + right <= (kw - 1) * dw:
            continue  # the kernel does not fit
        rng = random.Random(f"chanconv-edge:{len(cases)}")
        x, k = _values(rng, (n, ci, h, w)), _values(rng, (2 * groups, ci // groups, kh, kw))
        cases.append(Case("conv2d", f"edge{len(cases)}", x, k, _values(rng, (2 * groups,)),
                          stride, padding, dilation, groups))  # fmt: skip
    return cases


def workarounds(adapter: ArrayBackend) -> list[str]:
    """The framework-kernel limits the adapter declares, each with what chanconv does
    instead (``chanconv.protocol.NativeLimits``)."""
    if not has_native(adapter) or not isinstance(adapter, NativeLimits):
        return []
    return [limit.describe() for limit in adapter.native_limits()]


def algorithms(adapter: ArrayBackend) -> tuple[str, ...]:
    """conv2d's algorithms on this backend: ``im2col-tiled`` is im2col with a limit so small
    that it runs its tiled code."""
    return ("direct", "im2col", "im2col-tiled", *(("native",) if has_native(adapter) else ()))


def _variants(case: Case, algos: Sequence[str]) -> Sequence[str]:
    """conv2d's algorithms, or the one section function (for the examples: by label)."""
    if case.operation == "conv2d":
        return algos
    return (case.label,) if case.operation == REFERENCE else (case.operation,)


_SECTION_OPS: dict[str, Callable[[object, object], Tensor]] = {
    "corr2d": corr2d, "corr2d_multi_in": corr2d_multi_in,
    "corr2d_multi_in_out": corr2d_multi_in_out,
    "corr2d_multi_in_out_1x1": corr2d_multi_in_out_1x1,
}  # fmt: skip


def evaluate(adapter: ArrayBackend, case: Case, dtype: str, variant: str) -> Tensor:
    """Run ``case`` through chanconv's public function on the backend's tensors of ``dtype``;
    ``variant`` is conv2d's algorithm, or the section function's name."""

    def tensor(a: Array) -> Tensor:
        return adapter.asarray(a.astype(dtype), dtype)

    x, k = tensor(case.x), tensor(case.k)
    if case.operation != "conv2d":
        return _SECTION_OPS[variant](x, k)
    bias = None if case.bias is None else tensor(case.bias)
    algorithm = "im2col" if variant == "im2col-tiled" else variant
    previous = set_im2col_limit(TILED_IM2COL_LIMIT) if variant == "im2col-tiled" else None
    try:
        return conv2d(x, k, bias, stride=case.stride, padding=case.padding,
                      dilation=case.dilation, groups=case.groups, algorithm=algorithm)  # fmt: skip
    finally:
        if previous is not None:
            set_im2col_limit(previous)


@dataclass
class Tally:
    """One operation in one dtype on one backend."""

    cases: int = 0
    checks: int = 0
    passed: int = 0
    worst_abs_error: float = 0.0
    worst_ratio: float = 0.0
    variants: list[str] = field(default_factory=list)
    #: shared case label -> variant -> {"shape": [...], "values": [...]}
    shared: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": self.cases, "checks": self.checks, "passed": self.passed,
            "failed": self.checks - self.passed,
            "worst_abs_error": _finite(self.worst_abs_error),
            "worst_ratio": _finite(self.worst_ratio), "variants": self.variants,
            "shared": self.shared,
        }  # fmt: skip


@dataclass(frozen=True)
class Failure:
    backend: str
    operation: str
    dtype: str
    variant: str
    case: str
    abs_error: float | None
    ratio: float | None
    message: str

    def describe(self) -> str:
        where = f"{self.backend} {self.operation} {self.dtype}"
        if self.variant != self.operation:
            where += f" {self.variant}"
        return f"{where}: {self.message}\n    {self.case}"


@dataclass
class BackendResult:
    name: str
    framework: str
    #: the pip command that installs the backend
    install: str
    origin: str
    #: the distribution that registered the adapter ("chanconv" for the built-in ones)
    distribution: str | None
    #: "pass", "fail", "error" (the framework would not import or compute), "missing"
    status: str = "pass"
    version: str | None = None
    error: str | None = None
    seconds: float = 0.0
    tallies: dict[str, dict[str, Tally]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    failed: int = 0
    #: The declared framework-kernel workarounds (docs/known-bugs.md).
    workarounds: list[str] = field(default_factory=list)

    def tally(self, operation: str, dtype: str) -> Tally:
        return self.tallies.setdefault(operation, {}).setdefault(dtype, Tally())

    @property
    def cases(self) -> int:
        """Inputs checked (each in every dtype, counted once)."""
        return sum(t.cases for per in self.tallies.values() for t in per.values()) // len(DTYPES)

    @property
    def checks(self) -> int:
        return sum(t.checks for per in self.tallies.values() for t in per.values())

    @property
    def worst_ratio(self) -> float:
        return max((t.worst_ratio for per in self.tallies.values() for t in per.values()),
                   default=0.0)  # fmt: skip

    @property
    def worst_abs_error(self) -> float:
        return max((t.worst_abs_error for per in self.tallies.values() for t in per.values()),
                   default=0.0)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "framework": self.framework, "version": self.version,
            "origin": self.origin, "distribution": self.distribution, "install": self.install,
            "status": self.status,
            "error": self.error, "seconds": round(self.seconds, 3), "cases": self.cases,
            "checks": self.checks, "failed": self.failed, "workarounds": self.workarounds,
            "worst_ratio": _finite(self.worst_ratio),
            "worst_abs_error": _finite(self.worst_abs_error),
            "results": {op: {dt: t.to_json() for dt, t in per.items()}
                        for op, per in self.tallies.items()},
            "failures": [
                {"operation": f.operation, "dtype": f.dtype, "variant": f.variant,
                 "case": f.case, "abs_error": _finite(f.abs_error), "ratio": _finite(f.ratio),
                 "message": f.message}
                for f in self.failures
            ],
        }  # fmt: skip


def _finite(value: float | None) -> float | None:
    """JSON has no infinity or NaN: those become null (the counts say what failed)."""
    return value if value is not None and math.isfinite(value) else None


class Progress:
    """A progress bar on a terminal, redrawn in place with ``\\r``; on anything else
    (a pipe, a CI log) silent until ``close`` prints one line."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self.columns = shutil.get_terminal_size((80, 24)).columns - 1
        self.started = self.last_draw = time.monotonic()

    def advance(self, label: str, steps: int = 1) -> None:
        self.done += steps
        now = time.monotonic()
        if self.live and (now - self.last_draw >= 0.05 or self.done >= self.total):
            self.last_draw = now
            filled = self.width * min(self.done, self.total) // self.total
            bar = "#" * filled + "." * (self.width - filled)
            line = f"[{bar}] {self.done}/{self.total} {label}"
            self.stream.write("\r" + line[: self.columns].ljust(self.columns))
            self.stream.flush()

    def close(self, summary: str) -> None:
        if self.live:
            self.stream.write("\r" + " " * self.columns + "\r")
        self.stream.write(f"{summary} in {time.monotonic() - self.started:.1f} s\n")
        self.stream.flush()


def _compare(
    case: Case, expected: Array, scale: Array, out: Array, dtype: str
) -> tuple[float | None, float | None, str | None]:
    """(worst |error|, worst error / tolerance, failure message or None)."""
    if out.shape != expected.shape:
        return None, None, f"shape {out.shape}, expected {expected.shape}"
    if out.size == 0:
        return 0.0, 0.0, None
    error = np.abs(out - expected)
    abs_error = float(np.max(error))
    if not math.isfinite(abs_error):
        return math.inf, math.inf, "non-finite values in the result"
    if case.operation == REFERENCE:  # the book's numbers, to the last digit
        ratio = 0.0 if abs_error == 0.0 else math.inf
        if ratio:
            return abs_error, ratio, f"{out.tolist()} instead of the book's {expected.tolist()}"
        return abs_error, ratio, None
    ratios = error / (RTOL[dtype] * scale + ATOL[dtype])
    ratio = float(np.max(ratios))
    if ratio <= 1.0:
        return abs_error, ratio, None
    at = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratios)), ratios.shape))
    message = (f"|error| {abs_error:.3g} is {ratio:.3g} x the tolerance; at {at}: "
               f"{out[at]!r} instead of {expected[at]!r}")  # fmt: skip
    return abs_error, ratio, message


def _ownership_error(adapter: ArrayBackend) -> str | None:
    """chanconv sends a tensor to the backend its type belongs to; when another backend
    claims this adapter's tensors, checking it would check that other one instead."""
    owner = backend_for(adapter.asarray([[0.0]], "float32"))
    if owner is adapter:
        return None
    claimed = "no backend" if owner is None else f"the {owner.name!r} backend"
    return (f"tensors made by the {adapter.name!r} adapter are dispatched to {claimed}; "
            "chanconv could not run this adapter on them")  # fmt: skip


def check_backend(
    adapter: ArrayBackend, cases: Sequence[Case], oracles: dict[int, tuple[Array, Array]],
    progress: Progress | None = None,
) -> BackendResult:  # fmt: skip
    """Run every case in both dtypes (conv2d: by every algorithm) on one backend."""
    result = BackendResult(adapter.name, adapter.framework, install_command(adapter.name),
                           origin(adapter.name), distribution(adapter.name))  # fmt: skip
    started = time.monotonic()
    algos = algorithms(adapter)
    try:
        result.version = adapter.version()
        result.workarounds = workarounds(adapter)
        result.error = _ownership_error(adapter)
    except Exception as err:  # the framework's import failed: report it, check the rest
        result.error = f"{type(err).__name__}: {err}"
    if result.error is not None:
        result.status = "error"
        if progress is not None:
            progress.advance(adapter.name, sum(len(DTYPES) * len(_variants(c, algos))
                                               for c in cases))  # fmt: skip
        return result
    for index, case in enumerate(cases):
        if index not in oracles:
            oracles[index] = case.oracle()
        expected, scale = oracles[index]
        for dtype in DTYPES:
            tally = result.tally(case.operation, dtype)
            tally.cases += 1
            for variant in _variants(case, algos):
                if variant not in tally.variants:
                    tally.variants.append(variant)
                tally.checks += 1
                abs_error: float | None = None
                ratio: float | None = None
                try:
                    y = evaluate(adapter, case, dtype, variant)
                    got = adapter.dtype_name(y)
                    out = np.asarray(adapter.to_numpy(y), dtype=np.float64)
                    abs_error, ratio, message = _compare(case, expected, scale, out, dtype)
                    if message is None and got != dtype:
                        message = f"the result is {got}, not {dtype} like the inputs"
                except Exception as err:  # a backend that raises fails this check
                    message = f"raised {type(err).__name__}: {err}"
                if abs_error is not None and ratio is not None:
                    tally.worst_abs_error = max(tally.worst_abs_error, abs_error)
                    tally.worst_ratio = max(tally.worst_ratio, ratio)
                if message is None:
                    tally.passed += 1
                    if case.shared:
                        tally.shared.setdefault(case.label, {})[variant] = {
                            "shape": list(out.shape),
                            "values": out.ravel().tolist(),
                        }
                else:
                    result.failed += 1
                    if len(result.failures) < LISTED_FAILURES:
                        result.failures.append(Failure(
                            adapter.name, case.operation, dtype, variant, case.describe(),
                            abs_error, ratio, message,
                        ))  # fmt: skip
                if progress is not None:
                    progress.advance(f"{adapter.name} {case.operation} {dtype}")
    result.status = "fail" if result.failed else "pass"
    result.seconds = time.monotonic() - started
    return result


def missing_result(adapter: ArrayBackend) -> BackendResult:
    return BackendResult(
        adapter.name, adapter.framework, install_command(adapter.name), origin(adapter.name),
        distribution(adapter.name), status="missing",
        error=f"not installed: {install_command(adapter.name)}",
    )  # fmt: skip


def run_checks(
    names: Iterable[str] | None = None, *, cases: int = DEFAULT_CASES, seed: int = DEFAULT_SEED,
    stream: TextIO | None = None, thorough: bool = False,
) -> list[BackendResult]:  # fmt: skip
    """Check the named backends (each must be installed), or every known backend: the
    installed ones are checked, the others reported as missing. ``thorough`` adds the
    edge grid (``edge_cases``). Progress goes to ``stream`` (stderr)."""
    if names is None:
        chosen = list(adapters().values())
    else:
        chosen = [get_adapter(name) for name in names]  # ImportError names the extra
    installed = [a for a in chosen if is_installed(a)]
    all_cases = make_cases(cases, seed) + (edge_cases() if thorough else [])
    total = sum(len(DTYPES) * len(_variants(c, algorithms(a))) for a in installed
                for c in all_cases)  # fmt: skip
    progress = Progress(total, stream)
    oracles: dict[int, tuple[Array, Array]] = {}
    results = [check_backend(a, all_cases, oracles, progress) if a in installed
               else missing_result(a) for a in chosen]  # fmt: skip
    checked = sum(r.status != "missing" for r in results)
    progress.close(f"checked {progress.done} results on {checked} backend"
                   f"{'' if checked == 1 else 's'}")  # fmt: skip
    return results


def _number(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


def format_results(results: Sequence[BackendResult]) -> str:
    """The summary table, then the first failures and any errors."""
    header = ("backend", "version", "cases", "checks", "worst err/tol", "worst abs err", "result")
    rows = [header]
    for r in results:
        if r.status in ("missing", "error"):
            rows.append((r.name, r.version or "-", "-", "-", "-", "-",
                         "not installed" if r.status == "missing" else "ERROR"))  # fmt: skip
            continue
        ratio = "inf" if math.isinf(r.worst_ratio) else f"{r.worst_ratio:.3f}"
        rows.append((r.name, r.version or "-", str(r.cases), str(r.checks), ratio,
                     _number(r.worst_abs_error),
                     "pass" if r.status == "pass" else f"FAIL ({r.failed})"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {2, 3, 4, 5}
    lines = ["  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    active = [f"{r.name}: workaround {w}" for r in results if r.status not in ("missing", "error")
              for w in r.workarounds]  # fmt: skip
    if active:
        lines += ["", "framework kernel workarounds active (docs/known-bugs.md):",
                  *(f"  {a}" for a in active)]  # fmt: skip
    notes = [f"{r.name}: {r.error}" for r in results if r.error]
    if notes:
        lines += ["", *notes]
    failures = [f for r in results for f in r.failures]
    if failures:
        total = sum(r.failed for r in results)
        lines += ["", f"failures ({len(failures)} of {total} listed):"]
        lines += [f"  {f.describe()}" for f in failures]
    lines += ["", "tolerance: |err| <= rtol * sum|terms| + atol; "
              + "; ".join(f"{d}: rtol {RTOL[d]:g}, atol {ATOL[d]:g}" for d in DTYPES)
              + "; the section's examples must be exact"]  # fmt: skip
    return "\n".join(lines)


def to_json(results: Sequence[BackendResult], *, cases: int, seed: int) -> dict[str, Any]:
    from chanconv import __version__

    return {
        "schema": JSON_SCHEMA,
        "meta": {
            "chanconv": __version__, "python": platform.python_version(),
            "platform": platform.platform(), "cases": cases, "seed": seed,
            "dtypes": list(DTYPES), "operations": [REFERENCE, *OPERATIONS],
            "rtol": RTOL, "atol": ATOL,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "backends": {r.name: r.to_json() for r in results},
    }  # fmt: skip


def run(
    backend: str | None = None, *, cases: int = DEFAULT_CASES, seed: int = DEFAULT_SEED,
    json_path: str | None = None, out: TextIO | None = None, err: TextIO | None = None,
    thorough: bool = False,
) -> int:  # fmt: skip
    """The ``check`` command: 0 when every checked backend passes, 1 otherwise."""
    if cases < 0:
        raise ValueError(f"--cases must not be negative, got {cases}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    results = run_checks(None if backend is None else [backend], cases=cases, seed=seed,
                         stream=err, thorough=thorough)  # fmt: skip
    print(format_results(results), file=out or sys.stdout)
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = to_json(results, cases=cases, seed=seed)
        path.write_text(json.dumps(document, allow_nan=False) + "\n")
        print(f"wrote {path}", file=out or sys.stdout)
    return 0 if all(r.status in ("pass", "missing") for r in results) else 1
