"""The benchmark suite's smoke run (``python -m chanconv bench --quick``) on each installed
backend: the figures are taken, not asserted (speed is judged in benchmarks, not tests), but
the suite must run, time every method, and write its JSON and chart."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chanconv
from chanconv.algorithms import has_native
from chanconv.tools import bench


def test_quick_run_times_every_method_on_every_workload(installed_builtin, tmp_path):
    adapter = chanconv.get_adapter(installed_builtin.name)
    report = bench.run_benchmarks(installed_builtin.name, quick=True)
    assert report.backend == installed_builtin.name
    assert report.sgemm_gflops > 0
    assert report.im2col_limit_bytes == chanconv.im2col_limit()
    expected = {"auto", "direct", "im2col", "fourier", "fourier-kept", "auto-nhwc"}
    expected |= {"native"} if has_native(adapter) else set()
    # The compiled pair: on the smoke run's first workload only (compiling takes seconds).
    compiled = installed_builtin.name in ("torch", "tensorflow", "mxnet")
    for i, w in enumerate(bench.QUICK_WORKLOADS):
        rows = {m.method: m for m in report.measurements
                if m.workload == w.name and m.mode == "forward"}  # fmt: skip
        assert expected <= set(rows), (w.name, sorted(rows))
        assert ("d2l-loops" in rows) == w.loop_baseline
        if installed_builtin.name != "numpy":  # its own conv is always timed beside ours
            assert "framework-call" in rows
            assert rows["auto"].ratio_to_framework is not None
            assert rows["auto"].reference == rows["auto-nhwc"].reference == "framework-call"
        assert ("auto-compiled" in rows) == (compiled and i == 0)
        if "auto-compiled" in rows:  # compiled against compiled, compiling not timed
            assert rows["auto-compiled"].reference == "framework-compiled"
            assert rows["auto-compiled"].ratio_to_framework is not None
            assert rows["framework-compiled"].note.startswith("first call (compiling)")
        for m in rows.values():
            assert m.seconds > 0 and m.gflops > 0
            assert m.extra_memory_bytes <= m.peak_memory_bytes
    paths = bench.write_report(report, tmp_path)
    assert [p.name for p in paths] == [
        f"bench-{report.backend}.json",
        f"bench-{report.backend}.png",
    ]
    saved = json.loads(paths[0].read_text())
    assert len(saved["measurements"]) == len(report.measurements)
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    merged = bench.merge_reports(tmp_path)
    assert [p.name for p in merged] == ["summary.md", "summary.png"]
    summary = merged[0].read_text()
    assert f"| {report.backend} | {report.framework_version} |" in summary
    assert f"SGEMM peak: {report.sgemm_gflops:.1f} GFLOP/s" in summary
    # Training is timed wherever there is a reference: NumPy's is torch's, when installed.
    training = any(m.mode == "training" for m in report.measurements)
    assert training or installed_builtin.name == "numpy"
    for w in bench.QUICK_WORKLOADS:
        row = next(line for line in summary.splitlines() if line.startswith(f"| {w.name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        # each method's ratio (auto-compiled's column is empty where it was not
        # timed), auto's fraction of the peak; then auto's training pair
        columns = len(expected) + compiled
        assert len(cells) == columns + 1 + (2 if training else 0)
        assert cells[columns].endswith("%")
        if training:  # every ratio was measured, the training pass too (a very slow
            # method on a busy machine may round to 0.00)
            timed = [c for c in cells[:columns] if c]
            assert len(timed) == len(expected) + (compiled and w is bench.QUICK_WORKLOADS[0])
            assert all(float(c) >= 0 for c in timed + cells[-2:-1])
            trained = {m.method for m in report.measurements
                       if m.workload == w.name and m.mode == "training"}  # fmt: skip
            reference = "torch-call" if installed_builtin.name == "numpy" else "framework-call"
            assert trained == {reference, "auto"}
    assert bench.load_report(paths[0]) == report
    table = bench.format_table(report)
    assert "| auto | training |" in table or not training
    assert table.count("\n| ") == len(report.measurements) + 2  # header, rule, rows


def test_compiled_rows_are_taken_against_the_compiled_reference():
    refs = ["framework-call", "framework-nchw"]
    timed = [*refs, "auto", "auto-nhwc", "framework-compiled", "auto-compiled"]
    assert bench.reference_of("auto-compiled", refs, timed) == "framework-compiled"
    assert bench.reference_of("auto-nhwc", refs, timed) == "framework-call"
    assert bench.reference_of("framework-compiled", refs, timed) == "framework-call"
    # no compiled reference timed: the workload's first reference; no reference: none
    assert bench.reference_of("auto-compiled", refs, ["auto-compiled"]) == "framework-call"
    assert bench.reference_of("auto", [], ["auto"]) is None


def test_reports_from_before_the_reference_field_still_load(tmp_path):
    report = _report("torch", {("seed", "auto", "forward"): 0.9})
    data = json.loads(report.to_json())
    for m in data["measurements"]:
        del m["reference"]
    path = tmp_path / "bench-torch.json"
    path.write_text(json.dumps(data))
    assert bench.load_report(path).measurements[0].reference == ""


def test_summary_names_the_compiled_reference():
    report = _report("torch", {("seed", "auto", "forward"): 0.9,
                               ("seed", "auto-compiled", "forward"): 1.1})  # fmt: skip
    summary = bench.summary_markdown([report])
    assert "auto-compiled fwd (vs framework-compiled)" in summary
    assert "| seed | 0.90 | 1.10 |" in summary


def test_im2col_memory_stays_near_its_limit_beyond_the_result():
    """Measured with NumPy, whose arrays tracemalloc sees exactly (the other frameworks are
    measured by resident size in the benchmark run): the unfolded matrix of this layer is
    9 MiB; under a 1 MiB limit im2col holds one tile of it at a time in its reused column
    buffer, and multiplies into the result itself (no padded copy, no pieces to join)."""
    w = bench.Workload("probe", (4, 16, 64, 64), (16, 16, 3, 3), padding=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(w.input_shape).astype("float32")
    k = rng.standard_normal(w.kernel_shape).astype("float32")
    unfolded = 4 * 16 * 9 * 64 * 64 * 4
    previous = chanconv.set_im2col_limit(2**20)
    try:
        with bench._TracedPeak() as memory:
            y = chanconv.conv2d(x, k, padding=1, algorithm="im2col")
    finally:
        chanconv.set_im2col_limit(previous)
    assert memory.growth - w.result_bytes <= 1.1 * 2**20
    assert memory.growth < unfolded / 2
    expected = chanconv.conv2d(x, k, padding=1, algorithm="direct")
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def _report(backend: str, ratios: dict[tuple[str, str, str], float]) -> bench.Report:
    report = bench.Report(backend, "1.0", "x86_64, 2 cores", 80.0, 75.0, 2**26)
    for (workload, method, mode), ratio in ratios.items():
        report.measurements.append(bench.Measurement(
            workload, backend, method, 0.01, 10.0, 0.1, ratio, 0, 0, mode=mode))  # fmt: skip
    return report


def test_compare_reports_each_ratio_change_and_flags_drops_beyond_the_threshold():
    old = _report("torch", {("resnet-3x3", "auto", "forward"): 1.0,
                            ("resnet-3x3", "auto", "training"): 0.9,
                            ("lenet-conv1", "im2col", "forward"): 0.5,
                            ("gone", "auto", "forward"): 1.0})  # fmt: skip
    new = _report("torch", {("resnet-3x3", "auto", "forward"): 0.85,
                            ("resnet-3x3", "auto", "training"): 0.95,
                            ("lenet-conv1", "im2col", "forward"): 0.48,
                            ("new", "auto", "forward"): 1.0})  # fmt: skip
    changes = {(c.workload, c.method, c.mode): c for c in bench.compare_reports(old, new)}
    assert set(changes) == {("resnet-3x3", "auto", "forward"),
                            ("resnet-3x3", "auto", "training"),
                            ("lenet-conv1", "im2col", "forward")}  # fmt: skip
    assert changes["resnet-3x3", "auto", "forward"].change == pytest.approx(-0.15)
    table, dropped = bench.format_comparison(list(changes.values()), 0.1)
    assert dropped
    flagged = [line for line in table.splitlines() if "dropped more than 10%" in line]
    assert len(flagged) == 1 and flagged[0].startswith("| resnet-3x3 | auto | forward |")
    assert "| -15.0% |" in flagged[0]
    assert not bench.format_comparison(list(changes.values()), 0.2)[1]


def test_compare_refuses_reports_of_two_backends():
    with pytest.raises(ValueError, match="cannot compare a numpy report with a torch report"):
        bench.compare_reports(_report("numpy", {}), _report("torch", {}))


def test_bench_compare_command_exits_non_zero_on_a_drop(run_python, tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(_report("numpy", {("seed", "auto", "forward"): 2.0}).to_json())
    new.write_text(_report("numpy", {("seed", "auto", "forward"): 1.5}).to_json())
    args = ("-m", "chanconv", "bench", "--compare", str(old), "--against", str(new))
    proc = run_python(*args)
    assert proc.returncode == 1, proc.stderr
    assert "| seed | auto | forward | 2.00 | 1.50 | -25.0% |" in proc.stdout
    assert "dropped by more than 10%" in proc.stderr
    assert run_python(*args, "--threshold", "0.3").returncode == 0
    proc = run_python("-m", "chanconv", "bench", "--compare", str(new), "--against", str(old))
    assert proc.returncode == 0 and "+33.3%" in proc.stdout


def test_d2l_loop_baseline_computes_the_section_example(installed_builtin):
    adapter = chanconv.get_adapter(installed_builtin.name)
    x = np.array([[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]])
    k = np.array([[[0, 1], [2, 3]], [[1, 2], [3, 4]]])
    k3 = np.stack([k, k + 1, k + 2]).astype("float32")
    y = bench.d2l_loops(adapter, adapter.asarray(x.astype("float32")), adapter.asarray(k3))
    assert y.tolist() == [[[56, 72], [104, 120]], [[76, 100], [148, 172]],
                          [[96, 128], [192, 224]]]  # fmt: skip


def test_bench_command_writes_json_and_chart(run_python, tmp_path):
    proc = run_python("-m", "chanconv", "bench", "--quick", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "| seed | auto |" in proc.stdout
    assert (tmp_path / "bench-numpy.json").exists() and (tmp_path / "bench-numpy.png").exists()
    proc = run_python("-m", "chanconv", "bench-report", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "summary.md").exists() and (tmp_path / "summary.png").exists()


def test_bench_report_without_reports_is_a_clear_error(run_python, tmp_path):
    proc = run_python("-m", "chanconv", "bench-report", str(tmp_path))
    assert proc.returncode == 2
    assert "no bench-<backend>.json reports" in proc.stderr
