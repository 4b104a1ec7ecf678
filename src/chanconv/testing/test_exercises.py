"""The section's exercises as features: kernel composition (1), cost and memory (2, 3),
block-diagonal channels (7), on the backend under test."""

from __future__ import annotations

import numpy as np
import pytest

import chanconv
from chanconv.tools import cli

from . import frameworks, oracle


def tensor(adapter, array, dtype="float64"):
    return frameworks.from_numpy(adapter, np.asarray(array).astype(dtype))


@pytest.mark.parametrize(("first_stride", "second_stride"), [(1, 1), (2, 1), (1, 2), (2, 3)])
def test_two_convolutions_fold_into_one_kernel(adapter, first_stride, second_stride):
    rng = np.random.default_rng(first_stride * 10 + second_stride)
    x = rng.standard_normal((2, 3, 17, 16))
    k1, k2 = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal((5, 4, 2, 3))
    K = chanconv.compose_kernels(tensor(adapter, k1), tensor(adapter, k2),
                                 first_stride=first_stride)  # fmt: skip
    s = first_stride
    assert adapter.is_tensor(K)
    assert adapter.shape(K) == (5, 3, 3 + s * (2 - 1), 2 + s * (3 - 1))
    # Independent: the oracle applies both convolutions in turn, then the folded kernel.
    stride1, stride2 = (s, s), (second_stride, second_stride)
    twice = oracle.conv2d(oracle.conv2d(x, k1, stride=stride1), k2, stride=stride2)
    once = oracle.conv2d(x, adapter.to_numpy(K), stride=(s * second_stride,) * 2)
    assert once.shape == twice.shape
    np.testing.assert_allclose(once, twice, rtol=1e-10, atol=1e-10)


def test_composition_of_the_section_kernels_without_stride(adapter):
    # Exercise 1's claim in the section's terms: (kh1+kh2-1) x (kw1+kw2-1).
    k1 = [[[[0.0, 1.0], [2.0, 3.0]]]]
    k2 = [[[[1.0, -1.0]]]]
    K = adapter.to_numpy(chanconv.compose_kernels(tensor(adapter, k1), tensor(adapter, k2)))
    assert K.shape == (1, 1, 2, 3)
    # Full convolution of the two kernels, worked by hand.
    assert K.tolist() == [[[[0.0, 1.0, -1.0], [2.0, 1.0, -3.0]]]]


def test_composition_refuses_mismatched_channels(adapter):
    with pytest.raises(ValueError, match=r"K1 has 4 output channels but K2 expects 3"):
        chanconv.compose_kernels(tensor(adapter, np.ones((4, 2, 3, 3))),
                                 tensor(adapter, np.ones((5, 3, 1, 1))))  # fmt: skip
    k1, k2 = tensor(adapter, np.ones((4, 2, 3, 3))), tensor(adapter, np.ones((5, 4, 1, 1)))
    with pytest.raises(ValueError, match=r"first_stride must be a positive int"):
        chanconv.compose_kernels(k1, k2, first_stride=0)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_groups_are_a_block_diagonal_channel_matrix_at_a_fraction_of_the_cost(adapter, groups):
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((2, 8, 6, 7))
    k = rng.standard_normal((12, 8 // groups, 3, 3))
    dense = adapter.to_numpy(chanconv.block_diagonal_kernel(tensor(adapter, k), groups))
    assert dense.shape == (12, 8, 3, 3)
    cog, cig = 12 // groups, 8 // groups
    for o in range(12):
        for c in range(8):
            block = dense[o, c]
            if o // cog == c // cig:
                assert np.array_equal(block, k[o, c % cig])
            else:
                assert not block.any()
    grouped = chanconv.conv2d(tensor(adapter, x), tensor(adapter, k), groups=groups)
    np.testing.assert_allclose(adapter.to_numpy(grouped), oracle.conv2d(x, dense),
                               rtol=1e-10, atol=1e-10)  # fmt: skip
    cost_grouped = chanconv.conv2d_cost(x.shape, k.shape, groups=groups)
    cost_dense = chanconv.conv2d_cost(x.shape, dense.shape)
    assert cost_grouped.multiplications * groups == cost_dense.multiplications


COST_CASES = [
    dict(x=(1, 2, 3, 3), k=(3, 2, 2, 2)),
    dict(x=(2, 4, 7, 6), k=(6, 2, 3, 2), stride=(2, 1), padding=(1, 0), groups=2, bias=True),
    dict(x=(1, 3, 9, 9), k=(2, 3, 3, 3), stride=(3, 3), dilation=(2, 1)),
    dict(x=(1, 2, 8, 5), k=(2, 1, 2, 2), padding="same", groups=2),
    dict(x=(1, 1, 10, 10), k=(1, 1, 2, 2), stride=(4, 4)),  # pixels no window reads
]


@pytest.mark.parametrize("case", COST_CASES, ids=lambda c: str(c))
def test_cost_counts_match_a_loop_that_counts(case):
    kw = {key: case[key] for key in ("stride", "padding", "dilation", "groups") if key in case}
    bias = case.get("bias", False)
    cost = chanconv.conv2d_cost(case["x"], case["k"], bias=bias, **kw)
    h, w = case["x"][2:]
    kh, kwid = case["k"][2:]
    stride, dilation = kw.get("stride", (1, 1)), kw.get("dilation", (1, 1))
    padding = kw.get("padding", (0, 0))
    pads = oracle.pads_for(h, w, kh, kwid, stride, padding, dilation)
    counted = oracle.count_operations(case["x"], case["k"], stride, pads, dilation,
                                      kw.get("groups", 1), bias)  # fmt: skip
    assert cost.output_shape == counted["output_shape"]
    for field in ("multiplications", "additions", "backward_multiplications",
                  "backward_additions"):  # fmt: skip
        assert getattr(cost, field) == counted[field], field
    n, co, oh, ow = counted["output_shape"]
    items = np.prod(case["x"]) + np.prod(case["k"]) + (co if bias else 0) + n * co * oh * ow
    assert cost.forward_bytes == 4 * items


def test_cost_of_the_sections_discussion_layer():
    # 256x256 image, 5x5 kernel, 128 channels in and out: over 53 billion operations.
    c = chanconv.conv2d_cost((128, 256, 256), (128, 128, 5, 5), padding="same")
    assert c.multiplications == 128 * 128 * 5 * 5 * 256 * 256
    assert c.multiplications + c.additions > 53e9
    # Exercise 3: doubling input and output channels quadruples the work.
    d = chanconv.conv2d_cost((256, 256, 256), (256, 256, 5, 5), padding="same")
    assert d.multiplications == 4 * c.multiplications
    assert d.forward_flops / c.forward_flops == pytest.approx(4, rel=1e-3)
    assert d.backward_flops / c.backward_flops == pytest.approx(4, rel=1e-3)


def test_cost_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"X has 4 input channels but K expects 3"):
        chanconv.conv2d_cost((4, 8, 8), (2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"must hold positive ints"):
        chanconv.conv2d_cost((4, 0, 8), (2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"dtype must be one of"):
        chanconv.conv2d_cost((4, 8, 8), (2, 4, 3, 3), dtype="int8")


def test_cost_command_prints_the_table(capsys):
    code = cli.main(["cost", "--input", "1,128,256,256", "--kernel", "128,128,5,5",
                     "--padding", "same"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "53,678,702,592" in out and "forward multiplications" in out
    assert "backward operations" in out
    assert cli.main(["cost", "--input", "1,4,5,5", "--kernel", "4,3,3,3"]) == 2
    assert "X has 4 input channels but K expects 3" in capsys.readouterr().err
