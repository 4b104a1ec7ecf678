"""``explain``: the book's figure of multi-input-channel cross-correlation, for any input.

``explain(X, K, at=(i, j))`` draws the input channels and the kernel channels as grids of
numbers, shades the window that output element ``(i, j)`` reads in every input channel,
and writes the arithmetic out, one parenthesised group per input channel:

>>> import chanconv
>>> from chanconv.tools import reference
>>> print(chanconv.explain(reference.X, reference.K).text)
(0×0+1×1+3×2+4×3)+(1×1+2×2+4×3+5×4)=56

A kernel of shape (co, ci, kh, kw) gives one row per output channel; a 1x1 kernel is written
as the per-pixel linear combination of channels it is. The value is computed twice: by the
real operation (``corr2d_multi_in`` or ``corr2d_multi_in_out``, which also checks the
arguments) and, independently, from the numbers drawn; the figure shows both.

Drawing needs matplotlib (``pip install 'chanconv[plot]'``), imported only when a picture
is asked for; the text and the values do not need it. Nothing here imports NumPy or
matplotlib at module import.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chanconv.inputs import operand, pick_backend
from chanconv.operations import corr2d_multi_in, corr2d_multi_in_out
from chanconv.protocol import ArrayBackend
from chanconv.tools import reference

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Grid = list[list[float]]

#: Machine epsilon per dtype, for checking the operation against the written arithmetic.
_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}

# Layout, in grid cells (one cell is _UNIT_IN inches high).
_UNIT_IN = 0.42
_NUMBER_PT = 11.0
_LABEL_PT = 11.0
_MATH_PT = 10.5
_NOTE_PT = 9.0
_MONO_CHAR = 0.6 * _MATH_PT / 72 / _UNIT_IN  # width of one monospace character, in cells
_LINE = 1.45 * _MATH_PT / 72 / _UNIT_IN  # height of one line of arithmetic, in cells
_NOTE_LINE = 1.45 * _NOTE_PT / 72 / _UNIT_IN
_OP_GAP = 1.1  # room for an operator between two grids
_ROW_GAP = 0.9  # between the rows of output channels
_PROSE_CHAR = 0.52  # average width of a DejaVu Sans character, in ems
_MARGIN = 0.5
#: Larger inputs are drawn cropped around the window (the arithmetic stays complete).
_MAX_SIDE = 8
_MAX_CHANNELS = 4
_MAX_ROWS = 8
_MAX_WRAP = 110  # characters of arithmetic per line, at most
_MAX_LINES = 12  # lines of arithmetic per output channel, at most (the rest is elided)

_SHADE = "#9ecae1"
_EDGE = "#08519c"
_LINES = "#4d4d4d"
_INK = "#111111"
_MUTED = "#555555"
_BAD = "#b2182b"


def fmt(v: float) -> str:
    """A number as the figure writes it: integers without ``.0``, others with up to 4
    significant digits (``56``, ``-1.5``, ``0.3333``, ``1.235e+06``)."""
    if math.isfinite(v) and v == math.floor(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


def _factor(v: float) -> str:
    """A number as one factor of a product: negative ones in parentheses."""
    s = fmt(v)
    return f"({s})" if s.startswith("-") else s


@dataclass(frozen=True)
class Explanation:
    """What [`explain`][chanconv.explain] found, and its picture.

    ``text`` holds the written arithmetic, one line per output channel; ``value`` the
    operation's outputs at ``at``, one Python float per output channel; ``arithmetic`` the
    same values computed in float64 from the numbers drawn, term by term in the order
    written; ``agrees`` whether the two agree within the rounding of ``dtype``.
    ``to_svg()`` and ``save(path)`` draw it (matplotlib); in Jupyter it shows itself.

    Examples:
        >>> e = explain([[[1, 2], [3, 4]]], [[[1, 1], [1, 1]]])
        >>> e.text, e.value, e.agrees
        ('(1×1+2×1+3×1+4×1)=10', (10.0,), True)
    """

    X: tuple[Grid, ...]  # (ci, h, w), the numbers as drawn (float64)
    K: tuple[tuple[Grid, ...], ...]  # (co, ci, kh, kw); a 3-d kernel is co = 1
    Y: tuple[Grid, ...]  # (co, oh, ow), the operation's output
    at: tuple[int, int]
    multi_out: bool  # whether K came with an output-channel axis
    op: str  # the operation that computed Y
    backend: str
    dtype: str
    lines: tuple[str, ...]
    value: tuple[float, ...]
    arithmetic: tuple[float, ...]

    @property
    def text(self) -> str:
        """The arithmetic, one line per output channel."""
        return "\n".join(self.lines)

    @property
    def one_by_one(self) -> bool:
        return len(self.K[0][0]) == 1 and len(self.K[0][0][0]) == 1

    @property
    def agrees(self) -> bool:
        """Whether the operation's values equal the written arithmetic's, up to the rounding
        the operation's dtype allows."""
        return all(self._agrees(o) for o in range(len(self.value)))

    def _agrees(self, o: int) -> bool:
        i, j = self.at
        kh, kw = len(self.K[o][0]), len(self.K[o][0][0])
        scale = sum(abs(x[i + a][j + b] * k[a][b]) for x, k in zip(self.X, self.K[o], strict=True)
                    for a in range(kh) for b in range(kw))  # fmt: skip
        terms = len(self.X) * kh * kw
        tol = 4 * (terms + 1) * _EPS.get(self.dtype, 2.0**-7) * scale
        a, v = self.arithmetic[o], self.value[o]
        return a == v or abs(a - v) <= tol

    def __repr__(self) -> str:
        return f"<Explanation of {self.op} at {self.at}:\n{self.text}>"

    # --- pictures -----------------------------------------------------------------------
    def figure(self) -> Figure:
        """The picture as a matplotlib Figure (Agg canvas; pyplot is not involved)."""
        return _draw(self)

    def _metadata(self, kind: str) -> dict[str, Any]:
        title = f"chanconv.explain: {self.op} at {self.at}"
        if kind == "svg":
            return {"Title": title, "Description": self.text, "Date": None}
        return {"Title": title, "Description": self.text, "Software": "chanconv, matplotlib"}

    def to_svg(self) -> str:
        """The picture as an SVG document."""
        buf = io.StringIO()
        self.figure().savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.1,
                              metadata=self._metadata("svg"))  # fmt: skip
        return buf.getvalue()

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def save(self, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
        """Write the picture to ``path``: SVG or PNG, by its suffix (``.svg``, ``.png``)."""
        target = Path(path)
        kind = target.suffix.lower().lstrip(".")
        if kind not in ("svg", "png"):
            raise ValueError(
                f"explain: cannot save to {str(target)!r}: the file name must end in .svg or "
                f".png (got {target.suffix or 'no suffix'!r})"
            )
        if kind == "svg":
            target.write_text(self.to_svg(), encoding="utf-8")
        else:
            self.figure().savefig(target, format="png", dpi=dpi, bbox_inches="tight",
                                  pad_inches=0.1, metadata=self._metadata("png"))  # fmt: skip
        return target


def _check_at(at: object) -> tuple[int, int]:
    if (
        not isinstance(at, Sequence)
        or isinstance(at, str)
        or len(at) != 2
        or any(isinstance(v, bool) or not isinstance(v, Integral) for v in at)
    ):
        raise TypeError(f"explain: at must be a pair of ints (i, j), got {at!r}")
    return int(at[0]), int(at[1])


def _numbers(backend: ArrayBackend, value: object) -> list[Any]:
    """``value`` (nested lists, or a tensor of ``backend``) as nested Python floats."""
    import numpy as np

    if isinstance(value, (list, tuple)):
        array = np.asarray(value, dtype=np.float64)
    else:  # exact for every floating dtype; also takes bfloat16 off torch, which NumPy lacks
        array = np.asarray(backend.to_numpy(backend.astype(value, "float64")), np.float64)
    result: list[Any] = array.tolist()
    return result


def explain(X: object, K: object, at: Sequence[int] = (0, 0)) -> Explanation:
    """Explain output element ``at`` of the cross-correlation of X (ci, h, w) with K
    (ci, kh, kw), as ``corr2d_multi_in``, or with K (co, ci, kh, kw), as
    ``corr2d_multi_in_out``: the figure of the book's section, for these numbers.

    X and K are nested lists or tensors of any backend; the operation runs on the backend
    the rest of chanconv would pick. Nested lists are taken at float64, the numbers as
    written; tensors compute in their own dtype. Bad arguments are refused as the operation
    refuses them (``ValueError`` naming the shapes, ``TypeError`` for bad types), and ``at``
    must lie in the output.

    Examples:
        >>> X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
        >>> K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
        >>> e = explain(X, K, at=(1, 1))
        >>> print(e.text)
        (4×0+5×1+7×2+8×3)+(5×1+6×2+8×3+9×4)=120
        >>> e.value, e.agrees
        ((120.0,), True)
    """
    ij = _check_at(at)
    backend = pick_backend(X=X, K=K)
    x_op = operand(backend, "X", X, 3, "(ci, h, w)")
    k_op = operand(backend, "K", K, (3, 4), "(ci, kh, kw) or (co, ci, kh, kw)")
    multi_out = len(k_op.shape) == 4
    # Lists go in at float64, so that the operation sees exactly the numbers drawn.
    xt, kt = (op.tensor if op.is_tensor else backend.asarray(op.original, "float64")
              for op in (x_op, k_op))  # fmt: skip
    op_name = "corr2d_multi_in_out" if multi_out else "corr2d_multi_in"
    y = corr2d_multi_in_out(xt, kt) if multi_out else corr2d_multi_in(xt, kt)
    y_shape = backend.shape(y)
    oh, ow = y_shape[-2:]
    if not (0 <= ij[0] < oh and 0 <= ij[1] < ow):
        raise ValueError(
            f"explain: at={tuple(at)} is outside the output: X of shape {x_op.shape} and K "
            f"of shape {k_op.shape} give a {oh}x{ow} output (shape {y_shape}), so at must "
            f"satisfy 0 <= i < {oh} and 0 <= j < {ow}"
        )
    x = _numbers(backend, X)
    k = _numbers(backend, K) if multi_out else [_numbers(backend, K)]
    out = _numbers(backend, y) if multi_out else [_numbers(backend, y)]
    lines, arithmetic = [], []
    for o in range(len(k)):
        line, total = _arithmetic(x, k[o], ij, o if multi_out else None)
        lines.append(line)
        arithmetic.append(total)
    i, j = ij
    return Explanation(
        X=tuple(x), K=tuple(tuple(ko) for ko in k), Y=tuple(out), at=ij,
        multi_out=multi_out, op=op_name, backend=backend.name,
        dtype=backend.dtype_name(y), lines=tuple(lines),
        value=tuple(float(yo[i][j]) for yo in out), arithmetic=tuple(arithmetic),
    )  # fmt: skip


def _arithmetic(
    x: list[Grid], k: list[Grid], at: tuple[int, int], o: int | None
) -> tuple[str, float]:
    """One output channel's arithmetic as written, and its value computed independently of
    the operation: in float64, term by term, in the order written (so evaluating the text
    repeats this computation exactly when every number is written in full)."""
    i, j = at
    kh, kw = len(k[0]), len(k[0][0])
    if (kh, kw) == (1, 1):  # the per-pixel linear combination of the channels
        y_index = ",".join(str(v) for v in (*([o] if o is not None else []), i, j))
        weights = [k[c][0][0] for c in range(len(x))]
        pixel = [x[c][i][j] for c in range(len(x))]
        total = 0.0
        for w, v in zip(weights, pixel, strict=True):
            total += w * v
        symbolic = " + ".join(f"{_factor(w)}×X[{c},{i},{j}]" for c, w in enumerate(weights))
        numeric = " + ".join(
            f"{_factor(w)}×{_factor(v)}" for w, v in zip(weights, pixel, strict=True)
        )
        return f"Y[{y_index}] = {symbolic} = {numeric} = {fmt(total)}", total
    groups, total = [], 0.0
    for xc, kc in zip(x, k, strict=True):
        terms, group = [], 0.0
        for a in range(kh):
            for b in range(kw):
                group += xc[i + a][j + b] * kc[a][b]
                terms.append(f"{_factor(xc[i + a][j + b])}×{_factor(kc[a][b])}")
        total += group
        groups.append("(" + "+".join(terms) + ")")
    return "+".join(groups) + "=" + fmt(total), total


# --- drawing ------------------------------------------------------------------------------
def _matplotlib() -> tuple[type[Figure], Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "chanconv.explain draws its pictures with matplotlib, which is not installed; "
            "install it with: pip install 'chanconv[plot]'"
        ) from err
    return Figure, FigureCanvasAgg


def _view(n: int, start: int, length: int) -> tuple[int, int]:
    """The range of ``n`` indices to draw: all of them, or at most _MAX_SIDE (or the window,
    if larger) around the window [start, start + length)."""
    size = max(_MAX_SIDE, length)
    if n <= size:
        return 0, n
    lo = min(max(start - (size - length) // 2, 0), n - size)
    return lo, lo + size


@dataclass(frozen=True)
class _Panel:
    """One grid to draw: its numbers, the part shown, what is shaded, and its label."""

    values: Grid
    label: str
    rows: tuple[int, int]
    cols: tuple[int, int]
    window: tuple[int, int, int, int] | None  # (row, col, height, width) outlined
    shade_all: bool = False

    @property
    def height(self) -> int:
        return self.rows[1] - self.rows[0]

    def width(self, cell: float) -> float:
        return (self.cols[1] - self.cols[0]) * cell

    @property
    def caption(self) -> str:
        """The label, with the part shown when the grid is cropped."""
        h, w = len(self.values), len(self.values[0])
        if (self.rows, self.cols) == ((0, h), (0, w)):
            return self.label
        return (f"{self.label}  rows {self.rows[0]}-{self.rows[1] - 1} of {h}, "
                f"cols {self.cols[0]}-{self.cols[1] - 1} of {w}")  # fmt: skip


def _panels(e: Explanation, o: int, channels: int) -> tuple[list[tuple[_Panel, _Panel]], _Panel]:
    i, j = e.at
    kh, kw = len(e.K[o][0]), len(e.K[o][0][0])
    h, w = len(e.X[0]), len(e.X[0][0])
    rows, cols = _view(h, i, kh), _view(w, j, kw)
    pairs = []
    for c in range(channels):
        k_label = f"K[{o},{c}]" if e.multi_out else f"K[{c}]"
        pairs.append((
            _Panel(e.X[c], f"X[{c}]", rows, cols, (i, j, kh, kw)),
            _Panel(e.K[o][c], k_label, _view(kh, 0, kh), _view(kw, 0, kw), None, True),
        ))  # fmt: skip
    y = e.Y[o]
    y_panel = _Panel(y, f"Y[{o}]" if e.multi_out else "Y",
                     _view(len(y), i, 1), _view(len(y[0]), j, 1), (i, j, 1, 1))  # fmt: skip
    return pairs, y_panel


def _draw_panel(ax: Axes, p: _Panel, left: float, top: float, cell: float) -> None:
    from matplotlib.patches import Rectangle

    r0, r1 = p.rows
    c0, c1 = p.cols
    for r in range(r0, r1):
        for c in range(c0, c1):
            x, y = left + (c - c0) * cell, top + (r - r0)
            inside = p.shade_all or (
                p.window is not None
                and p.window[0] <= r < p.window[0] + p.window[2]
                and p.window[1] <= c < p.window[1] + p.window[3]
            )
            ax.add_patch(Rectangle((x, y), cell, 1, facecolor=_SHADE if inside else "white",
                                   edgecolor=_LINES, linewidth=0.8))  # fmt: skip
            ax.text(x + cell / 2, y + 0.5, fmt(p.values[r][c]), ha="center", va="center_baseline",
                    fontsize=_NUMBER_PT, color=_INK)  # fmt: skip
    if p.window is not None:
        wr, wc, wh, ww = p.window
        ax.add_patch(Rectangle((left + (wc - c0) * cell, top + (wr - r0)), ww * cell, wh,
                               fill=False, edgecolor=_EDGE, linewidth=2.2))  # fmt: skip
    elif p.shade_all:
        ax.add_patch(Rectangle((left, top), p.width(cell), p.height, fill=False,
                               edgecolor=_EDGE, linewidth=2.2))  # fmt: skip
    ax.text(left + p.width(cell) / 2, top - 0.2, p.caption, ha="center", va="bottom",
            fontsize=_LABEL_PT, color=_INK, fontweight="bold")  # fmt: skip


def _wrap(line: str, width: int) -> list[str]:
    """Break a line of arithmetic after its ``+`` and ``=`` signs so that no piece is much
    longer than ``width`` characters; past _MAX_LINES lines, the middle is elided (the
    figure's text; ``Explanation.text`` keeps it all)."""
    if len(line) <= width:
        return [line]
    pieces, start = [], 0
    for pos, ch in enumerate(line):
        if ch in "+=" and pos > 0:
            pieces.append(line[start : pos + 1])
            start = pos + 1
    pieces.append(line[start:])
    out, current = [], ""
    for piece in pieces:
        if current and len(current) + len(piece) > width:
            out.append(current)
            current = "  " + piece.lstrip()
        else:
            current += piece
    out.append(current)
    if len(out) > _MAX_LINES:
        out = [*out[: _MAX_LINES - 2], "  ⋯", out[-1]]
    return out


def _cell_width(e: Explanation, rows: int, channels: int) -> float:
    """Cells wide enough for the longest number drawn."""
    grids = [*e.X[:channels], *(k for ko in e.K[:rows] for k in ko[:channels]), *e.Y[:rows]]
    longest = max(len(fmt(v)) for g in grids for row in g for v in row)
    return max(1.0, 0.62 * _NUMBER_PT / 72 / _UNIT_IN * longest + 0.35)


def _title(e: Explanation) -> str:
    ci, co = len(e.X), len(e.K)
    plural = "s" if (co if e.multi_out else ci) != 1 else ""
    channels = (f"{ci} input and {co} output channel{plural}" if e.multi_out
                else f"{ci} input channel{plural}")  # fmt: skip
    if e.one_by_one:
        return (f"1×1 convolution with {channels}: output element {e.at} is a linear "
                "combination of the input channels at that pixel")  # fmt: skip
    return f"Cross-correlation with {channels}: output element {e.at}"


def _note(e: Explanation, o: int) -> tuple[str, str]:
    index = ", ".join(str(v) for v in (*([o] if e.multi_out else []), *e.at))
    call = f"chanconv.{e.op}(X, K)[{index}] = {fmt(e.value[o])}  ({e.backend}, {e.dtype})"
    if e._agrees(o):
        return f"{call}  ✓ agrees with the arithmetic", _MUTED
    diff = abs(e.value[o] - e.arithmetic[o])
    return f"{call}  ✗ differs from the arithmetic by {diff:.3g}", _BAD


def _draw(e: Explanation) -> Figure:
    figure_class, canvas_class = _matplotlib()
    rows = min(len(e.K), _MAX_ROWS)
    channels = min(len(e.X), _MAX_CHANNELS)
    cell = _cell_width(e, rows, channels)
    layout = [_panels(e, o, channels) for o in range(rows)]
    pairs0, y0 = layout[0]
    grids_width = (sum(px.width(cell) + _OP_GAP + pk.width(cell) for px, pk in pairs0)
                   + _OP_GAP * len(pairs0) + y0.width(cell)
                   + (2.2 if channels < len(e.X) else 0.0))  # fmt: skip
    wrap = min(max(60, int(grids_width / _MONO_CHAR)), _MAX_WRAP)
    wrapped = [_wrap(line, wrap) for line in e.lines[:rows]]
    text_width = max(len(s) for lines in wrapped for s in lines) * _MONO_CHAR
    width = 2 * _MARGIN + max(grids_width, text_width)

    # Heights: title, then per row the captions, the grids, the arithmetic and the note.
    band = [max(max(px.height, pk.height) for px, pk in pairs) for pairs, _ in layout]
    band = [max(b, y.height) for b, (_, y) in zip(band, layout, strict=True)]
    row_heights = [1.0 + b + 0.45 + _LINE * len(w) + _NOTE_LINE + 0.1
                   for b, w in zip(band, wrapped, strict=True)]  # fmt: skip
    extra = [s for s in (
        f"(input channels {channels}-{len(e.X) - 1} are not drawn, but are in the arithmetic)"
        if channels < len(e.X) else "",
        f"(output channels {rows}-{len(e.K) - 1} are not drawn)" if rows < len(e.K) else "",
    ) if s]  # fmt: skip
    notes = [_note(e, o) for o in range(rows)]
    prose = [*(n for n, _ in notes), *extra]
    prose_width = max(_PROSE_CHAR * _NOTE_PT / 72 / _UNIT_IN * len(s) for s in prose)
    title_char = _PROSE_CHAR * (_LABEL_PT + 1) / 72 / _UNIT_IN
    title_line = 1.3 * (_LABEL_PT + 1) / 72 / _UNIT_IN
    width = 2 * _MARGIN + max(grids_width, text_width, prose_width)
    title = textwrap.wrap(_title(e), max(40, int((width - 2 * _MARGIN) / title_char)))
    title_height = 0.35 + len(title) * title_line + 0.4
    height = (title_height + sum(row_heights) + _ROW_GAP * (rows - 1)
              + _NOTE_LINE * len(extra) + _MARGIN / 2)  # fmt: skip

    fig = figure_class(figsize=(width * _UNIT_IN, height * _UNIT_IN))
    canvas_class(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # rows run downwards, as in the grids
    ax.set_axis_off()
    ax.text(_MARGIN, 0.35, "\n".join(title), ha="left", va="top", fontsize=_LABEL_PT + 1,
            color=_INK, linespacing=1.3)  # fmt: skip

    top = title_height
    for (pairs, y_panel), b, lines, rh, o in zip(layout, band, wrapped, row_heights,
                                                 range(rows), strict=True):  # fmt: skip
        grid_top = top + 1.0
        x = _MARGIN
        mid = grid_top + b / 2

        def put(p: _Panel, left: float, top_: float = grid_top, band_: int = b) -> float:
            _draw_panel(ax, p, left, top_ + (band_ - p.height) / 2, cell)
            return left + p.width(cell)

        def operator(symbol: str, left: float, y_mid: float = mid) -> float:
            size = _LABEL_PT + (14 if symbol == "⋆" else 5)  # the star's glyph is small
            ax.text(left + _OP_GAP / 2, y_mid, symbol, ha="center", va="center_baseline",
                    fontsize=size, color=_INK)  # fmt: skip
            return left + _OP_GAP

        for c, (px, pk) in enumerate(pairs):
            if c:
                x = operator("+", x)
            x = put(px, x)
            x = operator("⋆", x)
            x = put(pk, x)
        if channels < len(e.X):
            ax.text(x + 1.1, mid, "+ ⋯", ha="center", va="center_baseline",
                    fontsize=_LABEL_PT + 3, color=_INK)  # fmt: skip
            x += 2.2
        x = operator("=", x)
        put(y_panel, x)
        text_top = grid_top + b + 0.45
        ax.text(_MARGIN, text_top, "\n".join(lines), ha="left", va="top", family="monospace",
                fontsize=_MATH_PT, color=_INK, linespacing=1.45)  # fmt: skip
        note, color = notes[o]
        ax.text(_MARGIN, text_top + _LINE * len(lines) + 0.1, note, ha="left", va="top",
                fontsize=_NOTE_PT, color=color)  # fmt: skip
        top += rh
        if o < rows - 1:  # a rule between output channels
            ax.plot([_MARGIN, width - _MARGIN], [top + _ROW_GAP / 2] * 2, color="#cccccc",
                    linewidth=0.8)  # fmt: skip
            top += _ROW_GAP
    for s in extra:
        ax.text(_MARGIN, top, s, ha="left", va="top", fontsize=_NOTE_PT, color=_MUTED)
        top += _NOTE_LINE
    for artist in ax.get_children():  # no clip paths: their SVG ids would be random
        artist.set_clip_on(False)
    return fig


def explain_example(out: str | os.PathLike[str] | None = None, at: Sequence[int] = (0, 0),
                    multi_out: bool = False) -> Explanation:  # fmt: skip
    """The section's example (X with K, or with the 3-output kernel K3 when ``multi_out``),
    explained at ``at`` on the active backend, and saved to ``out`` when given."""
    e = explain(reference.X, reference.K3 if multi_out else reference.K, at)
    if out is not None:
        e.save(out)
    return e
