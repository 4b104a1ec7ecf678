"""The Dask backend beyond the shared suite: chunking never changes the answer, nothing is
computed before the caller asks, bad input is refused naming the rule, and the same calls
run on a real dask.distributed cluster of worker processes.

Runs in the dask session (``nox -s "tests(dask)"``), where dask is installed."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest

import chanconv
from chanconv.testing import oracle

da = pytest.importorskip("dask.array", reason="the dask session runs these")
dask = pytest.importorskip("dask")
from dask.array.utils import assert_eq  # noqa: E402
from dask.callbacks import Callback  # noqa: E402


class CountTasks(Callback):  # type: ignore[misc]
    """Counts the tasks Dask's local schedulers run while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.ran = 0

    def _posttask(self, key, result, dsk, state, id):
        self.ran += 1


def _problem(seed, x_shape, k_shape):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(x_shape),
        rng.standard_normal(k_shape),
        rng.standard_normal(k_shape[0]),
    )


# Chunkings of a (3, 4, 11, 9) input: one chunk, batch only, space only (smaller than most
# halos), channels only, single rows and columns, everything, and ragged chunks.
CHUNKINGS = [
    (3, 4, 11, 9), (1, 4, 11, 9), (3, 4, 2, 3), (3, 1, 11, 9), (1, 2, 1, 2), (2, 3, 5, 4),
    ((1, 2), (3, 1), (4, 1, 6), (2, 7)),
]  # fmt: skip
SETTINGS = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=(2, 3), padding=(1, 2), dilation=1, groups=1),
    dict(stride=3, padding=0, dilation=1, groups=1),  # stride beyond the kernel: no halo
    dict(stride=1, padding="same", dilation=(2, 1), groups=2),  # asymmetric padding
    dict(stride=(1, 2), padding=1, dilation=2, groups=4),  # depthwise
]


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_every_chunking_gives_the_oracles_answer_with_consistent_chunks(chunks, settings):
    groups = settings["groups"]
    x, k, b = _problem(0, (3, 4, 11, 9), (8, 4 // groups, 3, 2))
    pads = oracle.pads_for(11, 9, 3, 2, _pair(settings["stride"]), _pad(settings["padding"]),
                           _pair(settings["dilation"]))  # fmt: skip
    want = oracle.conv2d(x, k, b, stride=_pair(settings["stride"]), pads=pads,
                         dilation=_pair(settings["dilation"]), groups=groups)  # fmt: skip
    X = da.from_array(x, chunks=chunks)
    for K in (k, da.from_array(k, chunks=(3, 1, 2, 1))):  # NumPy or chunked Dask kernel
        y = chanconv.conv2d(X, K, b, **settings)
        assert isinstance(y, da.Array)
        # assert_eq computes block by block and checks each block against the declared chunks.
        assert_eq(y, want, rtol=1e-10, atol=1e-10)


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _pad(v):
    return v if isinstance(v, str) else _pair(v)


def test_output_chunks_follow_the_input_over_the_stride_and_channels_stay_chunked():
    x, k, _ = _problem(1, (4, 6, 32, 32), (8, 6, 3, 3))
    X = da.from_array(x, chunks=(2, 3, 8, 16))
    K = da.from_array(k, chunks=(4, 6, 3, 3))
    y = chanconv.conv2d(X, K, stride=2, padding=1)
    assert y.chunks == ((2, 2), (4, 4), (4, 4, 4, 4), (8, 8))
    assert_eq(y, oracle.conv2d(x, k, stride=(2, 2), pads=(1, 1, 1, 1)), rtol=1e-10, atol=1e-10)


def test_chunks_smaller_than_the_halo_are_rechunked_not_refused():
    x, k, _ = _problem(2, (1, 2, 20, 20), (3, 2, 7, 7))  # halo of 6 rows and columns
    y = chanconv.conv2d(da.from_array(x, chunks=(1, 1, 1, 2)), k, dilation=2)
    assert min(min(c) for c in y.chunks[2:]) >= 1
    assert_eq(y, oracle.conv2d(x, k, dilation=(2, 2)), rtol=1e-10, atol=1e-10)


def test_every_operation_is_lazy_until_compute():
    x, k, b = _problem(3, (2, 4, 9, 8), (6, 4, 3, 3))
    X, K = da.from_array(x, chunks=(1, 2, 4, 4)), da.from_array(k, chunks=2)
    dy = da.from_array(np.ones((2, 6, 7, 6)), chunks=3)
    with CountTasks() as counter:
        results = [
            chanconv.corr2d(X[0, 0], K[0, 0]),
            chanconv.corr2d_multi_in(X[0], K[0]),
            chanconv.corr2d_multi_in_out(X[0], K),
            chanconv.corr2d_multi_in_out_1x1(X[0], K[:, :, :1, :1]),
            chanconv.conv2d(X, K, b, stride=2, padding=1, dilation=(1, 2)),
            chanconv.conv2d(X, K[:, :2], groups=2, algorithm="direct"),
            chanconv.conv2d(X, K, algorithm="im2col"),
            *chanconv.conv2d_vjp(X, K, dy, bias=b),
        ]
        assert counter.ran == 0  # nothing computed while building
        assert all(isinstance(r, da.Array) for r in results)
        dask.compute(*results)
        assert counter.ran > 0  # and the counter does see computing


def test_conv2d_vjp_is_lazy_and_chunk_correct():
    x, k, b = _problem(4, (2, 4, 9, 8), (6, 2, 3, 2))
    settings = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    geometry = dict(stride=(2, 1), pads=(1, 1, 1, 1), dilation=(1, 2), groups=2)
    dy = np.random.default_rng(5).standard_normal(oracle.conv2d(x, k, **geometry).shape)
    want = oracle.conv2d_vjp(x, k, dy, **geometry)
    for chunks in ((1, 2, 4, 5), (2, 1, 9, 3)):
        got = chanconv.conv2d_vjp(da.from_array(x, chunks=chunks), da.from_array(k, chunks=1),
                                  da.from_array(dy, chunks=chunks), bias=b, **settings)  # fmt: skip
        assert all(isinstance(g, da.Array) for g in got)
        for g, w in zip(got, want, strict=True):
            assert_eq(g, w, rtol=1e-10, atol=1e-10)


def test_graph_size_grows_with_the_number_of_chunks_not_the_data():
    k = np.ones((4, 4, 3, 3))

    def graph(shape, chunks):
        y = chanconv.conv2d(da.zeros(shape, chunks=chunks), k, padding=1)
        return y.__dask_graph__()

    small, large = graph((2, 4, 64, 64), (1, 4, 32, 32)), graph((2, 4, 512, 512), (1, 4, 256, 256))
    assert len(small) == len(large)  # 64 times the data, the same tasks
    assert len(pickle.dumps(dict(large))) < 100_000  # no data in the graph: kernels only
    finer = graph((2, 4, 512, 512), (1, 4, 128, 128))
    assert len(finer) > len(large)


def test_numpy_kernel_and_bias_beside_a_dask_image_give_dask():
    x, k, b = _problem(6, (1, 2, 5, 5), (3, 2, 2, 2))
    y = chanconv.conv2d(da.from_array(x, chunks=2), k, b)
    assert isinstance(y, da.Array)
    assert_eq(y, oracle.conv2d(x, k, b), rtol=1e-10, atol=1e-10)
    y = chanconv.corr2d_multi_in(x[0], da.from_array(k[0]))  # NumPy image, Dask kernel
    assert isinstance(y, da.Array)


def test_unknown_chunk_sizes_are_refused_naming_compute_chunk_sizes():
    x = da.from_array(np.ones((4, 2, 5, 5)), chunks=2)
    unknown = x[x[:, 0, 0, 0] > 0]  # a boolean mask: the batch size is unknown
    assert np.isnan(unknown.shape[0])
    with CountTasks() as counter:
        with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes\(\)"):
            chanconv.conv2d(unknown, np.ones((1, 2, 2, 2)))
    assert counter.ran == 0


def test_dask_mixed_with_another_framework_names_both(grid, grid_module):
    X = da.from_array(np.ones((2, 3, 3)))
    with pytest.raises(TypeError, match=r"dask.*grid|grid.*dask"):
        chanconv.corr2d_multi_in(X, grid_module.array(np.ones((2, 2, 2))))
    with pytest.raises(TypeError, match=r"dask.*grid|grid.*dask"):
        chanconv.conv2d(grid_module.array(np.ones((1, 2, 3, 3))), X[None, :, :2, :2])


def test_the_backend_is_chosen_by_name_and_lists_become_one_chunk():
    with chanconv.use_backend("dask"):
        y = chanconv.corr2d_multi_in([[[0, 1, 2], [3, 4, 5], [6, 7, 8]]], [[[0, 1], [2, 3]]])
    assert isinstance(y, da.Array) and y.dtype == np.float32
    assert y.compute().tolist() == [[19.0, 25.0], [37.0, 43.0]]


def test_blocks_run_through_chanconv_on_the_blocks_own_backend(monkeypatch):
    """Each block is a NumPy array handed to chanconv.conv2d, which takes the NumPy
    backend's own auto choice (im2col) on it."""
    from chanconv import algorithms

    seen = []
    original = algorithms.convolve

    def spy(backend, x, k, g, dtype, algorithm, *rest):
        seen.append((backend.name, type(x).__name__, algorithms.choose_algorithm(backend, g)
                     if algorithm == "auto" else algorithm))  # fmt: skip
        return original(backend, x, k, g, dtype, algorithm, *rest)

    monkeypatch.setattr(algorithms, "convolve", spy)
    monkeypatch.setattr(chanconv.operations, "convolve", spy)
    x, k, _ = _problem(7, (2, 2, 8, 8), (2, 2, 3, 3))
    y = chanconv.conv2d(da.from_array(x, chunks=(1, 2, 4, 8)), k)
    y.compute(scheduler="synchronous")
    assert ("dask", "Array", "native") in seen
    blocks = [s for s in seen if s[0] == "numpy"]
    assert len(blocks) == 4 and all(s == ("numpy", "ndarray", "im2col") for s in blocks)


# --- on a real cluster ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", memory_limit="1GiB")  # fmt: skip
    with cluster:
        with distributed.Client(cluster) as c:
            yield c


def test_the_same_calls_run_on_a_cluster_of_worker_processes(client):
    import os

    x, k, b = _problem(8, (4, 4, 24, 20), (6, 2, 3, 3))
    X = da.from_array(x, chunks=(1, 2, 8, 7))
    y = chanconv.conv2d(X, da.from_array(k, chunks=3), b, stride=(2, 1), padding=1, groups=2)
    want = oracle.conv2d(x, k, b, stride=(2, 1), pads=(1, 1, 1, 1), groups=2)
    np.testing.assert_allclose(y.compute(), want, rtol=1e-10, atol=1e-10)
    # The tasks ran in the workers' processes, not in this one.
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    dX, dK, db = chanconv.conv2d_vjp(X.rechunk((2, 4, 24, 20)), k, da.ones(y.shape), bias=b,
                                     stride=(2, 1), padding=1, groups=2)  # fmt: skip
    ex, ek, eb = oracle.conv2d_vjp(x, k, np.ones(y.shape), stride=(2, 1), pads=(1, 1, 1, 1),
                                   groups=2)  # fmt: skip
    gx, gk, gb = client.compute([dX, dK, db], sync=True)
    for got, want_ in ((gx, ex), (gk, ek), (gb, eb)):
        np.testing.assert_allclose(got, want_, rtol=1e-10, atol=1e-10)
    # Persisted results stay on the workers, chunked as declared.
    kept = y.persist()
    assert kept.chunks == y.chunks
    np.testing.assert_allclose(kept.compute(), want, rtol=1e-10, atol=1e-10)


def test_cluster_tasks_are_small(client):
    x = da.random.default_rng(0).standard_normal((2, 8, 256, 256), chunks=(1, 8, 64, 64))
    y = chanconv.conv2d(x, np.ones((8, 8, 3, 3), dtype="float64"), padding=1)
    graph = dict(y.__dask_graph__())
    biggest = max(len(pickle.dumps(task)) for task in graph.values())
    assert biggest < 10_000  # a kernel at most: no block of data inside a task
    assert y.sum().compute() == pytest.approx(
        float(chanconv.conv2d(x.compute(), np.ones((8, 8, 3, 3)), padding=1).sum()), rel=1e-9
    )


@pytest.mark.parametrize("case", list(itertools.islice(itertools.product(
    [(1, 1), (2, 2)], [0, 2], [1, 3]), 0, 8, 3)), ids=str)  # fmt: skip
def test_cluster_results_equal_the_in_memory_backend(client, case):
    stride, padding, dilation = case
    x, k, b = _problem(9, (2, 3, 17, 13), (4, 3, 3, 3))
    in_memory = chanconv.conv2d(x, k, b, stride=stride, padding=padding, dilation=dilation)
    y = chanconv.conv2d(da.from_array(x, chunks=(1, 2, 5, 4)), k, b, stride=stride,
                        padding=padding, dilation=dilation)  # fmt: skip
    np.testing.assert_allclose(y.compute(), in_memory, rtol=1e-12, atol=1e-12)


def test_the_out_of_core_benchmark_runs_end_to_end(tmp_path):
    """CI's smoke run of ``chanconv bench --backend dask --quick``: on-disk input, clusters
    of 1 and 2 worker processes, on-disk result, checked; figures taken, not asserted."""
    from chanconv.tools import bench

    report = bench.run_out_of_core(quick=True, folder=tmp_path)
    assert [r.workers for r in report.runs] == [1, 2]
    assert report.numpy_in_memory_gflops > 0
    for run in report.runs:
        assert run.seconds > 0 and run.gflops > 0 and run.peak_worker_memory_bytes > 0
        assert run.workers_lost == 0 and run.workers_paused == 0
    assert list(tmp_path.iterdir()) == []  # the scratch files are gone
    path = bench.write_out_of_core(report, tmp_path / "out")
    saved = json.loads(path.read_text())
    assert saved["workload"]["input_shape"] == list(bench.QUICK_OUT_OF_CORE.input_shape)
    assert saved["speedup"] == pytest.approx(report.speedup)
    assert "speed-up 1 -> 2 workers" in bench.format_out_of_core(report)
    # The real run's input is at least 4 times the memory of its 2-worker cluster.
    real = bench.OUT_OF_CORE
    assert real.input_bytes >= 4 * 2 * real.worker_memory_bytes
