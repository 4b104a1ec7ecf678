"""Framework-kernel workarounds: the canonical geometry, the adapter's declared native
limits that ``auto`` and an explicit ``native`` obey, and ``check --thorough``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from chanconv.backends.numpy import NumpyBackend

import chanconv
from chanconv import algorithms
from chanconv.geometry import ConvGeometry, canonical_geometry, conv_geometry
from chanconv.protocol import NativeConv2d
from chanconv.testing import oracle as loops
from chanconv.tools import check, cli
from chanconv.workarounds import NativeLimit


def test_an_axis_one_output_wide_loses_its_stride_and_keeps_its_output() -> None:
    g = conv_geometry((3, 1, 7, 4), (2, 1, 3, 2), stride=(1, 3))
    c = canonical_geometry(g)
    assert (c.stride, c.h, c.w, c.pads, c.output_shape) == ((1, 1), 7, 2, (0, 0, 0, 0),
                                                            g.output_shape)  # fmt: skip
    tall = canonical_geometry(conv_geometry((2, 1, 2, 7), (2, 1, 2, 3), stride=(3, 1), padding=1))
    # Padded rows 0..1 hold the one window: one padding row, one input row, no padding after.
    assert (tall.stride, tall.h, tall.pads) == ((1, 1), 1, (1, 0, 1, 1))


def test_geometries_with_nothing_to_canonicalise_are_returned_as_they_are() -> None:
    strided = conv_geometry((1, 1, 9, 9), (1, 1, 3, 3), stride=2)  # 4x4 output
    assert canonical_geometry(strided) is strided
    # The one window lies wholly in the left padding: nothing to crop to, stride kept.
    in_padding = conv_geometry((2, 1, 3, 1), (2, 1, 1, 1), stride=(1, 3), padding=1)
    assert in_padding.ow == 1 and canonical_geometry(in_padding) is in_padding


def test_the_canonical_geometry_gives_the_oracles_answer_on_every_core_algorithm() -> None:
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((3, 1, 7, 4)), rng.standard_normal((2, 1, 3, 2))
    expected = loops.conv2d(x, k, None, stride=(1, 3))
    for algorithm in ("direct", "im2col"):
        y = chanconv.conv2d(x, k, stride=(1, 3), algorithm=algorithm)
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def _one_wide(g: ConvGeometry, dtype: str) -> bool:
    return g.n > 1 and g.ow == 1


class FlakyNative(NumpyBackend):
    """NumPy with a "native" kernel that is wrong wherever the output is 1 wide, and says so."""

    name = "numpy"
    limit = NativeLimit("toy-one-wide", "Toy 1.0", "wrong result", "output 1 wide", "im2col",
                        _one_wide)  # fmt: skip

    def __init__(self) -> None:
        self.native_calls = 0

    def native_limits(self) -> Sequence[NativeLimit]:
        return (self.limit,)

    def conv2d_native(self, x: Any, k: Any, *, stride: tuple[int, int],
                      padding: tuple[int, int], dilation: tuple[int, int],
                      groups: int) -> Any:  # fmt: skip
        self.native_calls += 1
        g = conv_geometry(x.shape, k.shape, stride=stride, padding=padding, dilation=dilation,
                          groups=groups)  # fmt: skip
        y = algorithms.convolve(NumpyBackend(), x, k, g, x.dtype.name, "im2col")
        return y + 1.0 if g.n > 1 and g.ow == 1 else y  # the "framework bug"


def test_auto_and_explicit_native_avoid_a_declared_limit() -> None:
    adapter = FlakyNative()
    assert isinstance(adapter, NativeConv2d)
    chanconv.register(adapter, origin="tests:FlakyNative")  # replaces numpy for this test
    x, k = np.ones((2, 1, 5, 4)), np.ones((1, 1, 3, 4))
    g = conv_geometry(x.shape, k.shape)
    assert algorithms.native_limit(adapter, g, "float64") is adapter.limit
    assert algorithms.choose_algorithm(adapter, g, "float64") == "im2col"
    for algorithm in ("auto", "native"):
        np.testing.assert_array_equal(chanconv.conv2d(x, k, algorithm=algorithm),
                                      np.full((2, 1, 3, 1), 12.0))  # fmt: skip
    assert adapter.native_calls == 0
    wide = np.ones((2, 1, 5, 5))
    assert algorithms.choose_algorithm(adapter, conv_geometry(wide.shape, k.shape)) == "native"
    chanconv.conv2d(wide, k, algorithm="native")
    assert adapter.native_calls == 1


def test_check_lists_the_declared_workarounds(capsys: Any) -> None:
    chanconv.register(FlakyNative(), origin="tests:FlakyNative")
    assert cli.main(["check", "--backend", "numpy", "--cases", "5"]) == 0
    out = capsys.readouterr().out
    assert "workarounds active" in out
    assert "numpy: workaround toy-one-wide (Toy 1.0, wrong result): output 1 wide; im2col" in out


class UndeclaredBug(FlakyNative):
    """The same wrong kernel, declared by nobody: only the self-check can catch it."""

    def native_limits(self) -> Sequence[NativeLimit]:
        return ()


def test_thorough_names_the_backend_algorithm_and_geometry_that_is_wrong(
    capsys: Any, monkeypatch: Any
) -> None:
    # A smaller grid than the real one, holding the bug's geometry.
    monkeypatch.setattr(check, "EDGE_SIZES", ((7, 4),))
    monkeypatch.setattr(check, "EDGE_PADDINGS", (0,))
    monkeypatch.setattr(check, "EDGE_DILATIONS", (1,))
    chanconv.register(UndeclaredBug(), origin="tests:UndeclaredBug")
    assert cli.main(["check", "--backend", "numpy", "--cases", "0"]) == 0  # not without it
    capsys.readouterr()
    assert cli.main(["check", "--backend", "numpy", "--cases", "0", "--thorough"]) == 1
    out = capsys.readouterr().out
    assert "numpy conv2d float64 native:" in out
    assert "X (3, 1, 7, 4), K (2, 1, 3, 2), bias yes, stride=(1, 3)" in out
    assert "direct:" not in out and "im2col:" not in out  # chanconv's own are right


def test_the_edge_grid_holds_the_edges() -> None:
    cases = check.edge_cases()
    shapes = {(c.x.shape, c.k.shape, c.stride, c.padding, c.groups) for c in cases}
    assert ((3, 1, 7, 4), (2, 1, 3, 2), (1, 3), 0, 1) in shapes  # TF 2.21's oneDNN case
    assert any(c.groups == 3 for c in cases) and any(c.x.shape[0] == 1 for c in cases)
    assert any(c.padding == "same" and c.k.shape[3] % 2 == 0 for c in cases)  # asymmetric
    assert any(c.dilation != 1 and c.stride != 1 for c in cases)
