"""``python -m chanconv``: the section's computations from a shell."""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from typing import Any

from chanconv.cost import conv2d_cost
from chanconv.operations import corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1
from chanconv.registry import active_name, get_adapter, use_backend
from chanconv.tools import reference


def _random_nested(rng: random.Random, shape: Sequence[int]) -> Any:
    if not shape:
        return rng.gauss(0.0, 1.0)
    return [_random_nested(rng, shape[1:]) for _ in range(shape[0])]


def demo(backend_name: str | None) -> int:
    """Run the section's three computations on one backend; 0 if all match the book."""
    adapter = get_adapter(backend_name or active_name())
    print(f"chanconv demo on {adapter.name} ({adapter.framework} {adapter.version()})\n")
    failures = 0
    with use_backend(adapter.name):
        X, K, K3 = (adapter.asarray(v, "float32") for v in (reference.X, reference.K, reference.K3))

        def report(title: str, result: Any, ok: bool) -> None:
            nonlocal failures
            failures += not ok
            print(f"{title}\n{adapter.to_numpy(result)}\n-> {'matches' if ok else 'DOES NOT MATCH'}"
                  " the book\n")  # fmt: skip

        y = corr2d_multi_in(X, K)
        report("corr2d_multi_in(X, K):", y, adapter.to_numpy(y).tolist() == reference.MULTI_IN)
        y = corr2d_multi_in_out(X, K3)
        report(f"corr2d_multi_in_out(X, K stacked with K+1, K+2), K shape "
               f"{adapter.shape(K3)}:", y,
               adapter.to_numpy(y).tolist() == reference.MULTI_IN_OUT)  # fmt: skip

        rng = random.Random(0)
        Xr = adapter.asarray(_random_nested(rng, (3, 3, 3)), "float32")
        Kr = adapter.asarray(_random_nested(rng, (2, 3, 1, 1)), "float32")
        diff = abs(adapter.to_numpy(corr2d_multi_in_out_1x1(Xr, Kr))
                   - adapter.to_numpy(corr2d_multi_in_out(Xr, Kr))).sum()  # fmt: skip
        report(
            f"1x1 as matmul vs general form on random data, sum |Y1 - Y2| = {diff:.3g}:",
            corr2d_multi_in_out_1x1(Xr, Kr),
            bool(diff < reference.ONE_BY_ONE_TOLERANCE),
        )
    print("all three match" if not failures else f"{failures} of 3 DO NOT MATCH")
    return 1 if failures else 0


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def _pair_or_int(text: str) -> int | tuple[int, int]:
    values = _shape(text)
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return (values[0], values[1])
    raise argparse.ArgumentTypeError(f"expected an int or a pair, got {text!r}")


def _padding(text: str) -> int | tuple[int, int] | str:
    return text if text in ("same", "valid") else _pair_or_int(text)


def cost(args: argparse.Namespace) -> int:
    """Print conv2d_cost's table for the given shapes."""
    c = conv2d_cost(
        args.input, args.kernel, stride=args.stride, padding=args.padding,
        dilation=args.dilation, groups=args.groups, bias=args.bias, dtype=args.dtype,
    )  # fmt: skip
    rows = [
        ("input (n, ci, h, w)", str(c.input_shape)),
        ("kernel (co, ci/groups, kh, kw)", str(c.kernel_shape)),
        ("output (n, co, oh, ow)", str(c.output_shape)),
        ("forward multiplications", f"{c.multiplications:,}"),
        ("forward additions", f"{c.additions:,}"),
        ("forward operations", f"{c.forward_flops:,}"),
        (f"forward memory ({c.dtype})", f"{c.forward_bytes:,} B"),
        ("backward multiplications", f"{c.backward_multiplications:,}"),
        ("backward additions", f"{c.backward_additions:,}"),
        ("backward operations", f"{c.backward_flops:,}"),
        (f"backward memory ({c.dtype})", f"{c.backward_bytes:,} B"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>24}")
    return 0


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite on one backend; write JSON and a PNG chart."""
    from pathlib import Path

    from chanconv.tools.bench import (
        compare_reports,
        format_comparison,
        format_table,
        load_report,
        run_benchmarks,
        write_report,
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    # Dask arrays are lazy: its benchmark is the out-of-core run on a cluster, not call timings.
    if (args.backend or active_name()) == "dask":
        from chanconv.tools import bench

        ooc = bench.run_out_of_core(quick=args.quick, progress=progress)
        print(bench.format_out_of_core(ooc))
        print(f"wrote {bench.write_out_of_core(ooc, Path(args.out))}")
        return 0
    old = None if args.compare is None else load_report(Path(args.compare))
    if args.against is not None:
        if old is None:
            print("error: --against NEW.json needs --compare OLD.json", file=sys.stderr)
            return 2
        report = load_report(Path(args.against))
    else:
        name = args.backend or (old.backend if old is not None else active_name())
        report = run_benchmarks(name, quick=args.quick, training=not args.forward_only,
                                progress=progress, only=args.workload or ())  # fmt: skip
        print(format_table(report))
        for path in write_report(report, Path(args.out)):
            print(f"wrote {path}")
    if old is None:
        return 0
    table, dropped = format_comparison(compare_reports(old, report), args.threshold)
    print(table)
    if dropped:
        print(f"error: a ratio dropped by more than {args.threshold:.0%} against {args.compare}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chanconv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="run the section's examples and check them")
    demo_parser.add_argument("--backend", help="numpy, torch, tensorflow or mxnet")
    cost_parser = commands.add_parser(
        "cost", help="operations and memory of a convolution, forward and backward"
    )
    cost_parser.add_argument("--input", type=_shape, required=True,
                             help="n,ci,h,w or ci,h,w, e.g. 1,128,256,256")  # fmt: skip
    cost_parser.add_argument("--kernel", type=_shape, required=True,
                             help="co,ci/groups,kh,kw, e.g. 128,128,5,5")  # fmt: skip
    cost_parser.add_argument("--stride", type=_pair_or_int, default=1)
    cost_parser.add_argument("--padding", type=_padding, default=0, help="int, pair, same, valid")
    cost_parser.add_argument("--dilation", type=_pair_or_int, default=1)
    cost_parser.add_argument("--groups", type=int, default=1)
    cost_parser.add_argument("--bias", action="store_true")
    cost_parser.add_argument("--dtype", default="float32")
    bench_parser = commands.add_parser(
        "bench", help="time chanconv's algorithms against the framework's own convolution"
    )
    bench_parser.add_argument("--backend", help="numpy, torch, tensorflow or mxnet")
    bench_parser.add_argument("--quick", action="store_true", help="small workloads, one pass")
    bench_parser.add_argument("--workload", action="append",
                              help="time only this workload (repeatable)")  # fmt: skip
    bench_parser.add_argument("--out", default="build/bench", help="folder for JSON and PNG")
    bench_parser.add_argument("--forward-only", action="store_true",
                              help="skip the forward+backward (training) timings")  # fmt: skip
    bench_parser.add_argument("--compare", metavar="OLD.json",
                              help="compare each ratio with an earlier bench-<backend>.json; "
                              "exit 1 when one dropped by more than --threshold")  # fmt: skip
    bench_parser.add_argument("--against", metavar="NEW.json",
                              help="with --compare: compare with this report instead of a "
                              "fresh run")  # fmt: skip
    bench_parser.add_argument("--threshold", type=float, default=0.1,
                              help="largest relative drop of a ratio --compare accepts "
                              "(default 0.1: 10%%)")  # fmt: skip
    explain_parser = commands.add_parser(
        "explain", help="draw the section's example and print its arithmetic"
    )
    explain_parser.add_argument("--out", required=True, help="picture to write: .svg or .png")
    explain_parser.add_argument("--at", type=_shape, default=(0, 0), help="output element I,J")
    explain_parser.add_argument("--multi-out", action="store_true",
                                help="the 3-output-channel kernel K3 instead of K")  # fmt: skip
    commands.add_parser("backends", help="every known backend: installed, version, devices")
    check_parser = commands.add_parser(
        "check", help="check the installed backends against a float64 loop oracle"
    )
    check_which = check_parser.add_mutually_exclusive_group()
    check_which.add_argument("--backend", help="only this backend (default: all installed)")
    check_which.add_argument("--all", action="store_true", help="every installed backend")
    check_parser.add_argument("--cases", type=int, default=300, help="random cases (300)")
    check_parser.add_argument("--seed", type=int, default=0, help="seed of the random cases")
    check_parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    check_parser.add_argument(
        "--thorough", action="store_true", help="add the edge grid: where kernels go wrong"
    )
    bench_report_parser = commands.add_parser(
        "bench-report", help="merge bench JSON reports into FOLDER/summary.md and summary.png"
    )
    bench_report_parser.add_argument("folder", nargs="?", default="build/bench")
    matrix_parser = commands.add_parser(
        "matrix-report", help="merge check --json reports into FOLDER.md and FOLDER.html"
    )
    matrix_parser.add_argument("folder", help="folder of check reports, e.g. build/matrix")
    matrix_parser.add_argument("--expect", type=lambda s: s.split(","), default=[],
                               help="backends that must have a report: numpy,torch")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.command == "cost":
            return cost(args)
        if args.command == "bench":
            return bench(args)
        if args.command == "explain":
            from chanconv.tools.explain import explain_example

            try:
                print(explain_example(args.out, args.at, args.multi_out).text)
            except OSError as err:
                print(f"error: cannot write {args.out}: {err}", file=sys.stderr)
                return 2
            print(f"wrote {args.out}")
            return 0
        if args.command == "backends":
            from chanconv.tools.inventory import run as list_backends

            return list_backends()
        if args.command == "check":
            from chanconv.tools.check import run as run_check

            return run_check(args.backend, cases=args.cases, seed=args.seed, json_path=args.json,
                             thorough=args.thorough)  # fmt: skip
        if args.command == "bench-report":
            from pathlib import Path

            from chanconv.tools.bench import merge_reports

            for path in merge_reports(Path(args.folder)):
                print(f"wrote {path}")
            return 0
        if args.command == "matrix-report":
            from chanconv.tools.matrix import run as matrix_report

            return matrix_report(args.folder, expected=args.expect)
        return demo(args.backend)
    except (ImportError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
