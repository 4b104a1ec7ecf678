"""A float64 reference for ``python -m chanconv check``: plain Python loops over every output
element, input channel and kernel tap, written from the definitions and sharing no code with
the rest of chanconv (not even its shape arithmetic), so a bug there cannot hide itself.

Each function takes nested lists (or anything with ``tolist()``) and returns two nested
lists of the output's shape: the value, and the *scale*, the sum of the absolute values of
the terms that make up each output element (plus ``|bias|``). A correct float32 or float64
result differs from the value by at most a few units of rounding times the scale, which is
what the check's tolerances are relative to.

The test suite keeps its own, separate oracle (``tests/conformance/conv_oracle.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Grid = list[list[float]]
Padding = int | tuple[int, int] | str


def _lists(a: Any) -> Any:
    return a.tolist() if hasattr(a, "tolist") else a


def corr2d(x: Any, k: Any) -> tuple[Grid, Grid]:
    """The book's ``corr2d``: ``Y[i][j] = sum(X[i+a][j+b] * K[a][b])``, stride 1, no padding."""
    x, k = _lists(x), _lists(k)
    h, w, kh, kw = len(x), len(x[0]), len(k), len(k[0])
    value: Grid = []
    scale: Grid = []
    for i in range(h - kh + 1):
        value.append([])
        scale.append([])
        for j in range(w - kw + 1):
            total = magnitude = 0.0
            for a in range(kh):
                for b in range(kw):
                    term = float(x[i + a][j + b]) * float(k[a][b])
                    total += term
                    magnitude += abs(term)
            value[i].append(total)
            scale[i].append(magnitude)
    return value, scale


def _add(a: Grid, b: Grid) -> Grid:
    return [[u + v for u, v in zip(ra, rb, strict=True)] for ra, rb in zip(a, b, strict=True)]


def corr2d_multi_in(x: Any, k: Any) -> tuple[Grid, Grid]:
    """The sum over input channels of ``corr2d`` of each channel with its kernel."""
    x, k = _lists(x), _lists(k)
    if len(x) != len(k):
        raise ValueError(f"oracle: {len(x)} input channels but {len(k)} kernels")
    value, scale = corr2d(x[0], k[0])
    for xc, kc in zip(x[1:], k[1:], strict=True):
        v, s = corr2d(xc, kc)
        value, scale = _add(value, v), _add(scale, s)
    return value, scale


def corr2d_multi_in_out(x: Any, k: Any) -> tuple[list[Grid], list[Grid]]:
    """One ``corr2d_multi_in`` per output channel's kernel ``k[o]``; also the 1x1 form's
    reference."""
    pairs = [corr2d_multi_in(x, ko) for ko in _lists(k)]
    return [v for v, _ in pairs], [s for _, s in pairs]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def padding_amounts(
    h: int, w: int, kh: int, kw: int, stride: int | Sequence[int], padding: Padding,
    dilation: int | Sequence[int],
) -> tuple[int, int, int, int]:  # fmt: skip
    """(top, bottom, left, right). ``"same"`` is TensorFlow's rule: the output has
    ceil(size / stride) elements, and an odd amount of padding puts the extra one after."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        amounts: list[int] = []
        for size, k, s, d in zip((h, w), (kh, kw), _pair(stride), _pair(dilation), strict=True):
            out = (size + s - 1) // s
            need = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            amounts += [need // 2, need - need // 2]
        return (amounts[0], amounts[1], amounts[2], amounts[3])
    if isinstance(padding, str):
        raise ValueError(f"oracle: unknown padding {padding!r}")
    ph, pw = _pair(padding)
    return (ph, ph, pw, pw)


def conv2d(
    x: Any, k: Any, bias: Any = None, *, stride: int | Sequence[int] = 1,
    padding: Padding = 0, dilation: int | Sequence[int] = 1, groups: int = 1,
) -> tuple[list[Any], list[Any]]:  # fmt: skip
    """Deep learning's convolution: x (n, ci, h, w) or (ci, h, w), k (co, ci/groups, kh, kw),
    bias (co,) or None -> (n, co, oh, ow) or (co, oh, ow). Output channel ``o`` sees input
    channels ``g*ci/groups ... (g+1)*ci/groups - 1`` of its group ``g = o // (co/groups)``;
    input pixels outside the image (the zero padding) contribute nothing."""
    x, k = _lists(x), _lists(k)
    b = None if bias is None else _lists(bias)
    unbatched = not isinstance(x[0][0][0], list)
    images = [x] if unbatched else x
    ci, h, w = len(images[0]), len(images[0][0]), len(images[0][0][0])
    co, cig, kh, kw = len(k), len(k[0]), len(k[0][0]), len(k[0][0][0])
    if cig * groups != ci or co % groups:
        raise ValueError(f"oracle: groups={groups} does not fit ci={ci}, co={co}, ci/g={cig}")
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    top, bottom, left, right = padding_amounts(h, w, kh, kw, stride, padding, dilation)
    # Output rows: the starting rows r*sh - top whose last tap r*sh - top + (kh-1)*dh still
    # lies inside the padded image.
    oh = (h + top + bottom - (kh - 1) * dh - 1) // sh + 1
    ow = (w + left + right - (kw - 1) * dw - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError("oracle: empty output")
    per_group = co // groups
    values: list[Any] = []
    scales: list[Any] = []
    for image in images:
        value_image, scale_image = [], []
        for o in range(co):
            first = (o // per_group) * cig
            value_rows, scale_rows = [], []
            for r in range(oh):
                value_row, scale_row = [], []
                for c in range(ow):
                    total = 0.0 if b is None else float(b[o])
                    magnitude = abs(total)
                    for m in range(cig):
                        plane, kernel = image[first + m], k[o][m]
                        for i in range(kh):
                            row = r * sh - top + i * dh
                            if row < 0 or row >= h:
                                continue
                            for j in range(kw):
                                col = c * sw - left + j * dw
                                if 0 <= col < w:
                                    term = float(plane[row][col]) * float(kernel[i][j])
                                    total += term
                                    magnitude += abs(term)
                    value_row.append(total)
                    scale_row.append(magnitude)
                value_rows.append(value_row)
                scale_rows.append(scale_row)
            value_image.append(value_rows)
            scale_image.append(scale_rows)
        values.append(value_image)
        scales.append(scale_image)
    return (values[0], scales[0]) if unbatched else (values, scales)
