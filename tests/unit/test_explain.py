"""``chanconv.explain``: the section's figure, its written arithmetic, and the CLI."""

from __future__ import annotations

import math
import random
import re
import textwrap

import numpy as np
import pytest

import chanconv
from chanconv.tools import cli, reference

EXAMPLE_00 = "(0×0+1×1+3×2+4×3)+(1×1+2×2+4×3+5×4)=56"
EXAMPLE_11 = "(4×0+5×1+7×2+8×3)+(5×1+6×2+8×3+9×4)=120"


def _tensor(adapter, nested):
    """``nested`` as a float32 tensor of the backend under test (``pytest --backend``; the
    unit suite's fixtures reset the active backend to numpy for every test, so the session's
    ``adapter`` fixture names it)."""
    return adapter.asarray(nested, "float32")


def _evaluate(line: str) -> tuple[float, float]:
    """The written arithmetic of one line, evaluated by Python, and the result written after
    its last ``=``. Only digits, signs, points, exponents, parentheses and ``×`` may occur
    in the part evaluated."""
    parts = line.split("=")
    expression, result = parts[-2], parts[-1]
    assert re.fullmatch(r"[0-9.e+\-×() ]+", expression), expression
    return eval(expression.replace("×", "*")), float(result)


def _loop(X, K, i: int, j: int) -> float:
    """The output element (i, j) of one output channel, in float64 by plain loops."""
    total = 0.0
    for x, k in zip(X, K, strict=True):
        group = 0.0
        for a in range(len(k)):
            for b in range(len(k[0])):
                group += float(x[i + a][j + b]) * float(k[a][b])
        total += group
    return total


def _close(a: float, b: float, scale: float) -> bool:
    """Equal within 1e-9, relative to the magnitude of the terms summed."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale)


def _scale(X, K, i: int, j: int) -> float:
    return sum(abs(float(x[i + a][j + b]) * float(k[a][b])) for x, k in zip(X, K, strict=True)
               for a in range(len(k)) for b in range(len(k[0])))  # fmt: skip


# --- the section's example ------------------------------------------------------------------
def test_the_example_is_written_as_the_book_writes_it():
    e = chanconv.explain(reference.X, reference.K)
    assert e.text == EXAMPLE_00
    assert e.lines == (EXAMPLE_00,)
    assert e.value == (56.0,)
    assert all(type(v) is float for v in e.value)
    assert e.arithmetic == (56.0,)
    assert e.agrees
    assert chanconv.explain(reference.X, reference.K, at=(1, 1)).text == EXAMPLE_11
    assert chanconv.explain(reference.X, reference.K, at=[1, 1]).value == (120.0,)


def test_the_example_in_tensors_of_the_backend_under_test(adapter):
    e = chanconv.explain(_tensor(adapter, reference.X), _tensor(adapter, reference.K), at=(1, 1))
    assert e.text == EXAMPLE_11
    assert e.value == (120.0,)
    assert e.backend == adapter.name
    assert e.dtype == "float32"
    assert e.agrees


def test_lists_compute_at_float64_on_the_active_backend(adapter):
    X = [[[0.1, 0.2], [0.3, 0.4]], [[1.5, -2.25], [3.0, 0.7]]]
    K = [[[[0.3]], [[-0.6]]], [[[1.1]], [[0.9]]]]
    with chanconv.use_backend(adapter.name):
        e = chanconv.explain(X, K, at=(1, 1))
    assert (e.backend, e.dtype) == (adapter.name, "float64")
    assert e.lines[0] == "Y[0,1,1] = 0.3×X[0,1,1] + (-0.6)×X[1,1,1] = 0.3×0.4 + (-0.6)×0.7 = -0.3"
    assert math.isclose(e.value[0], 0.3 * 0.4 - 0.6 * 0.7, rel_tol=1e-12)
    assert math.isclose(e.value[1], 1.1 * 0.4 + 0.9 * 0.7, rel_tol=1e-12)
    assert e.agrees


def test_the_example_in_numpy_arrays_of_mixed_dtypes():
    X = np.asarray(reference.X, dtype=np.float64)
    K = np.asarray(reference.K, dtype=np.float32)
    e = chanconv.explain(X, K, at=(0, 1))
    assert e.value == (72.0,)
    assert e.text.endswith("=72")
    assert (e.backend, e.dtype) == ("numpy", "float64")


def test_multi_output_has_one_row_per_output_channel(adapter):
    e = chanconv.explain(reference.X, reference.K3)
    assert e.multi_out
    assert e.value == (56.0, 76.0, 96.0)
    assert e.text.splitlines() == [
        EXAMPLE_00,
        "(0×1+1×2+3×3+4×4)+(1×2+2×3+4×4+5×5)=76",
        "(0×2+1×3+3×4+4×5)+(1×3+2×4+4×5+5×6)=96",
    ]
    at_11 = chanconv.explain(_tensor(adapter, reference.X), _tensor(adapter, reference.K3), (1, 1))
    assert at_11.value == tuple(float(y[1][1]) for y in reference.MULTI_IN_OUT)
    svg = e.to_svg()
    for label in ("Y[0]", "Y[1]", "Y[2]", "K[2,1]", "56", "76", "96"):
        assert label in svg, label


def test_numbers_are_written_compactly():
    X = [[[0.5, -1.25], [2.0, 1 / 3]], [[-3.0, 1e-5], [123456.0, 2.5e7]]]
    K = [[[-2.0]], [[0.1]]]
    text = chanconv.explain(X, K, at=(0, 0)).text
    assert text == "Y[0,0] = (-2)×X[0,0,0] + 0.1×X[1,0,0] = (-2)×0.5 + 0.1×(-3) = -1.3"
    text = chanconv.explain(X, K, at=(1, 1)).text
    assert "(-2)×0.3333 + 0.1×2.5e+07" in text
    assert ".0×" not in text and ".0 " not in text


def test_a_one_by_one_kernel_is_a_linear_combination_of_channels():
    X = [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]], [[-1.0, 0.0], [1.0, 2.0]]]
    K = [[[[0.5]], [[-1.0]], [[2.0]]], [[[1.0]], [[0.0]], [[0.25]]]]
    e = chanconv.explain(X, K, at=(1, 0))
    assert e.text.splitlines() == [
        "Y[0,1,0] = 0.5×X[0,1,0] + (-1)×X[1,1,0] + 2×X[2,1,0] = 0.5×3 + (-1)×7 + 2×1 = -3.5",
        "Y[1,1,0] = 1×X[0,1,0] + 0×X[1,1,0] + 0.25×X[2,1,0] = 1×3 + 0×7 + 0.25×1 = 3.25",
    ]
    assert e.value == (-3.5, 3.25)
    expected = chanconv.corr2d_multi_in_out_1x1(np.asarray(X), np.asarray(K))[:, 1, 0]
    assert list(e.value) == expected.tolist()
    single = chanconv.explain(X, K[1], at=(0, 1))  # K as (ci, 1, 1): one output channel
    assert (
        single.text == "Y[0,1] = 1×X[0,0,1] + 0×X[1,0,1] + 0.25×X[2,0,1] = 1×2 + 0×6 + 0.25×0 = 2"
    )
    assert "1×1 convolution" in single.to_svg()


# --- random inputs ----------------------------------------------------------------------------
def _short(rng: random.Random) -> float:
    """A number that the figure writes in full: an integer, or two decimals, below 100."""
    if rng.random() < 0.4:
        return float(rng.randint(-9, 9))
    return round(rng.uniform(-99.0, 99.0), 2)


def _nested(rng: random.Random, shape: tuple[int, ...]):
    if not shape:
        return _short(rng)
    return [_nested(rng, shape[1:]) for _ in range(shape[0])]


def _gauss(rng: random.Random, shape: tuple[int, ...]):
    if not shape:
        return rng.gauss(0.0, 1.0)
    return [_gauss(rng, shape[1:]) for _ in range(shape[0])]


@pytest.mark.parametrize("seed", range(30))
def test_the_written_arithmetic_is_the_computation(seed):
    rng = random.Random(seed)
    ci, co = rng.randint(1, 4), rng.randint(1, 3)
    h, w = rng.randint(1, 6), rng.randint(1, 6)
    kh, kw = rng.randint(1, h), rng.randint(1, w)
    i, j = rng.randrange(h - kh + 1), rng.randrange(w - kw + 1)
    X = _nested(rng, (ci, h, w))
    multi_out = rng.random() < 0.5
    K = _nested(rng, (co, ci, kh, kw)) if multi_out else _nested(rng, (ci, kh, kw))
    kernels = K if multi_out else [K]
    if rng.random() < 0.3:
        X, K = np.asarray(X), np.asarray(K)  # float64 arrays: the same numbers, exactly

    e = chanconv.explain(X, K, at=(i, j))
    lines = e.text.splitlines()
    assert len(lines) == len(e.value) == len(kernels)
    for o, (line, kernel) in enumerate(zip(lines, kernels, strict=True)):
        written, result = _evaluate(line)
        expected = _loop(X, kernel, i, j)
        scale = _scale(X, kernel, i, j)
        assert _close(written, expected, scale), (line, expected)
        assert _close(e.value[o], expected, scale), (e.value[o], expected)
        assert e.arithmetic[o] == written  # the same sums, in the same order
        assert math.isclose(result, expected, rel_tol=5e-4, abs_tol=1e-9 + 5e-4 * scale)
        if (kh, kw) == (1, 1):
            assert line.startswith("Y[")
            assert line.count("×X[") == ci
        else:
            assert line.count("(") - line.count("(-") == ci  # one group per input channel
            assert line.count("×") == ci * kh * kw
    assert all(type(v) is float for v in e.value)
    assert e.agrees


def test_random_float32_tensors_agree_within_float32_rounding(adapter):
    rng = random.Random(7)
    X = _tensor(adapter, _gauss(rng, (3, 4, 5)))
    K = _tensor(adapter, _gauss(rng, (2, 3, 3, 2)))
    e = chanconv.explain(X, K, at=(1, 3))
    assert (e.backend, e.dtype) == (adapter.name, "float32")
    assert e.agrees
    x64 = adapter.to_numpy(X).astype(np.float64)
    for o, k in enumerate(adapter.to_numpy(K).astype(np.float64)):
        assert math.isclose(e.arithmetic[o], _loop(x64, k, 1, 3), rel_tol=1e-12)
        assert math.isclose(e.value[o], e.arithmetic[o], rel_tol=1e-5, abs_tol=1e-5)


# --- pictures -----------------------------------------------------------------------------
def test_png_is_a_real_picture(tmp_path):
    from matplotlib.image import imread

    path = chanconv.explain(reference.X, reference.K).save(tmp_path / "example.png")
    assert path == tmp_path / "example.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    height, width = image.shape[:2]
    assert 300 <= width <= 3000 and 150 <= height <= 2000, image.shape
    rgb = image[..., :3]
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50  # text and shading, antialiased
    not_white = (rgb < 0.95).any(axis=-1).mean()
    assert 0.03 < not_white < 0.6, not_white
    # the window's shade is there: a good many pixels of the light blue #9ecae1
    shade = np.abs(rgb - np.array([0x9E, 0xCA, 0xE1]) / 255).max(axis=-1) < 0.02
    assert shade.mean() > 0.02


def test_multi_output_png_is_taller_than_the_single_one(tmp_path):
    from matplotlib.image import imread

    one = imread(chanconv.explain(reference.X, reference.K).save(tmp_path / "one.png"))
    three = imread(chanconv.explain(reference.X, reference.K3).save(tmp_path / "three.png"))
    assert three.shape[0] > 2.5 * one.shape[0]


def test_svg_holds_the_numbers_and_the_arithmetic(tmp_path):
    e = chanconv.explain(reference.X, reference.K)
    svg = e.to_svg()
    assert "<svg" in svg
    assert "56" in svg
    assert EXAMPLE_00 in svg  # as the picture's description
    assert e._repr_svg_() == svg
    saved = e.save(str(tmp_path / "example.SVG"))
    assert saved.read_text(encoding="utf-8") == svg


def test_save_refuses_other_formats(tmp_path):
    e = chanconv.explain(reference.X, reference.K)
    for name in ("example.jpg", "example", "example.svg.txt"):
        with pytest.raises(ValueError, match=r"\.svg or \.png"):
            e.save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_matplotlib_is_imported_only_to_draw_and_pyplot_never(run_python):
    # In a fresh process: TensorFlow imports pyplot itself, so this one imports no framework.
    code = textwrap.dedent(
        """
        import sys

        import chanconv
        from chanconv.tools import reference

        e = chanconv.explain(reference.X, reference.K3)
        before = "matplotlib" in sys.modules
        e.to_svg()
        print(before, "matplotlib.figure" in sys.modules, "matplotlib.pyplot" in sys.modules)
        """
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True", "False"]


def test_large_inputs_are_drawn_cropped_with_the_arithmetic_complete(tmp_path):
    rng = random.Random(3)
    X = _nested(rng, (7, 30, 30))
    K = _nested(rng, (7, 3, 3))
    e = chanconv.explain(X, K, at=(20, 5))
    assert e.text.count("×") == 7 * 9
    written, _ = _evaluate(e.text)
    assert _close(written, _loop(X, K, 20, 5), _scale(X, K, 20, 5))
    svg = e.to_svg()
    assert "rows 18-25 of 30" in svg
    assert "input channels 4-6 are not drawn" in svg
    e.save(tmp_path / "large.png")


# --- bad arguments ------------------------------------------------------------------------
@pytest.mark.parametrize("at", [(2, 0), (0, 2), (-1, 0), (5, 5)])
def test_at_outside_the_output_is_refused(at):
    with pytest.raises(ValueError, match=r"outside the output.*\(2, 2\).*0 <= i < 2"):
        chanconv.explain(reference.X, reference.K, at=at)


@pytest.mark.parametrize("at", [0, (0,), (0, 0, 0), (0.0, 1), "01", (True, 0), None])
def test_at_of_the_wrong_type_is_refused(at):
    with pytest.raises(TypeError, match="pair of ints"):
        chanconv.explain(reference.X, reference.K, at=at)


def test_channel_mismatch_is_refused_with_the_shapes():
    K3in = [reference.K[0], reference.K[1], reference.K[0]]
    mismatch = r"2 input channels but K expects 3 .*\(2, 3, 3\).*\(3, 2, 2\)"
    with pytest.raises(ValueError, match=mismatch):
        chanconv.explain(reference.X, K3in)
    with pytest.raises(ValueError, match=r"\(2, 3, 3\).*\(3, 3, 2, 2\)"):
        chanconv.explain(reference.X, [K3in] * 3)


def test_other_bad_arguments_are_refused_as_the_operations_refuse_them():
    with pytest.raises(ValueError, match="does not fit"):
        chanconv.explain(reference.X, [[[0.0] * 4] * 4] * 2)
    with pytest.raises(ValueError, match=r"K has shape \(2, 2\).*3 or 4 dimensions"):
        chanconv.explain(reference.X, reference.K[0])
    with pytest.raises(ValueError, match=r"X has shape \(3, 3\)"):
        chanconv.explain(reference.X[0], reference.K)
    with pytest.raises(ValueError, match="ragged"):
        chanconv.explain([[[0.0, 1.0], [2.0]]], [[[1.0]]])
    with pytest.raises(TypeError, match="real numbers"):
        chanconv.explain([[["a"]]], [[[1.0]]])
    with pytest.raises(TypeError, match="X is a str"):
        chanconv.explain("X", reference.K)
    with pytest.raises(TypeError, match="dtype int64"):
        chanconv.explain(np.asarray(reference.X, dtype=np.int64), reference.K)


# --- the CLI ------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_cli_draws_the_example(tmp_path, capsys, suffix):
    out = tmp_path / f"example.{suffix}"
    assert cli.main(["explain", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    printed = capsys.readouterr().out
    assert EXAMPLE_00 in printed
    assert str(out) in printed


def test_cli_draws_the_multi_output_example_at_a_given_element(tmp_path, capsys):
    out = tmp_path / "three.png"
    assert cli.main(["explain", "--out", str(out), "--at", "1,1", "--multi-out"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    lines = capsys.readouterr().out.splitlines()
    assert [line.rpartition("=")[2] for line in lines[:3]] == ["120", "172", "224"]


def test_cli_reports_bad_arguments(tmp_path, capsys):
    assert cli.main(["explain", "--out", str(tmp_path / "x.png"), "--at", "2,0"]) == 2
    assert "outside the output" in capsys.readouterr().err
    assert cli.main(["explain", "--out", str(tmp_path / "x.gif")]) == 2
    assert ".svg or .png" in capsys.readouterr().err
    assert cli.main(["explain", "--out", str(tmp_path / "no" / "x.png")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
