"""The shape arithmetic of a 2-D convolution, checked once, in plain Python.

Everything that only needs shapes (output size, padding, the cost model) lives here, so it
is shared by the forward pass, the explicit backward pass and [`conv2d_cost`][chanconv.conv2d_cost]
without
touching a framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

IntPair = int | tuple[int, int]
Padding = int | tuple[int, int] | str


def as_pair(name: str, value: object) -> tuple[int, int]:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, not {value!r}")
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return (int(value[0]), int(value[1]))
    raise TypeError(f"{name} must be an int or a pair of ints, not {value!r}")


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_total: int) -> int:
    """floor((size + pad_total - dilation*(kernel-1) - 1) / stride) + 1, the rule every
    framework uses; may be <= 0 when the kernel does not fit."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def _same_pads(size: int | None, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    # TensorFlow's SAME: output ceil(size / stride); the odd pixel of padding goes after.
    # With stride 1 this is also PyTorch's padding="same", and the total, dilation*(kernel-1),
    # does not depend on the size: an unknown size (None) is then no obstacle.
    if size is None:
        total = dilation * (kernel - 1)
    else:
        out = -(-size // stride)
        total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class ConvGeometry:
    """A checked convolution: (n, ci, h, w) * (co, ci/groups, kh, kw) -> (n, co, oh, ow)."""

    #: None for a batch of unknown size (inside a traced graph).
    n: int | None
    ci: int
    #: None for an extent unknown until run time (inside a traced graph), and then oh or ow
    #: too. The core builds such a geometry only for the ``native`` algorithm, which needs
    #: no extent (``chanconv.operations`` refuses the others first); typed ``int`` so the
    #: arithmetic of the algorithms that are never given one stays unencumbered.
    h: int
    w: int
    co: int
    kh: int
    kw: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    #: (top, bottom, left, right); asymmetric only for "same" with an even extent.
    pads: tuple[int, int, int, int]
    groups: int
    oh: int
    ow: int
    #: (ph, pw) when top == bottom and left == right, else None.
    symmetric_padding: tuple[int, int] | None = field(init=False)
    #: A 1x1 kernel, stride 1, no padding: the convolution is a plain matmul.
    pointwise: bool = field(init=False)

    def batch(self, needed_by: str) -> int:
        """The batch size, or a ValueError naming ``needed_by`` where it is unknown until
        run time (inside a traced graph): for algorithms that plan per image."""
        if self.n is None:
            raise ValueError(
                f"{needed_by} needs the batch size, which is unknown until run time inside "
                "this graph: give the graph's input a static batch, or use another algorithm"
            )
        return self.n

    @property
    def input_shape(self) -> tuple[int | None, int, int, int]:
        return (self.n, self.ci, self.h, self.w)

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        return (self.co, self.ci // self.groups, self.kh, self.kw)

    @property
    def output_shape(self) -> tuple[int | None, int, int, int]:
        return (self.n, self.co, self.oh, self.ow)

    @property
    def padded_hw(self) -> tuple[int, int]:
        pt, pb, pl, pr = self.pads
        return (self.h + pt + pb, self.w + pl + pr)

    def __post_init__(self) -> None:
        # Worked out once: a remembered geometry is consulted on every call.
        pt, pb, pl, pr = self.pads
        symmetric = (pt, pl) if pt == pb and pl == pr else None
        pointwise = (self.kh, self.kw, self.stride, self.pads) == (1, 1, (1, 1), (0, 0, 0, 0))
        object.__setattr__(self, "symmetric_padding", symmetric)
        object.__setattr__(self, "pointwise", pointwise)


def conv_geometry(
    x_shape: tuple[int | None, ...],
    k_shape: tuple[int, ...],
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    op: str = "conv2d",
) -> ConvGeometry:
    """Check a convolution's arguments and work out its shapes. ``x_shape`` is
    (n, ci, h, w) and ``k_shape`` (co, ci/groups, kh, kw); raises ``ValueError`` or
    ``TypeError`` naming the shapes and the rule broken. Memoized: a layer called in a
    loop meets the same shapes every time."""
    args = (tuple(x_shape), tuple(k_shape), stride, padding, dilation, groups, op)
    try:
        return _checked_geometry(*args)
    except TypeError as err:  # a list among the settings: check it, uncached
        if "unhashable" not in str(err):
            raise
    return _checked_geometry.__wrapped__(*args)


@lru_cache(maxsize=1024, typed=True)
def _checked_geometry(
    x_shape: tuple[int | None, ...], k_shape: tuple[int, ...], stride: IntPair, padding: Padding,
    dilation: IntPair, groups: int, op: str,
) -> ConvGeometry:  # fmt: skip
    if len(x_shape) != 4 or len(k_shape) != 4:
        raise ValueError(
            f"{op}: X must be (n, ci, h, w) or (ci, h, w) and K (co, ci/groups, kh, kw); "
            f"got X shape {x_shape} and K shape {k_shape}"
        )
    # The batch may be None (unknown inside a traced graph), and h and w where the caller
    # allows it (the native algorithm); ci never (the callers check).
    n, (ci, h, w) = x_shape[0], cast("tuple[int, int | None, int | None]", x_shape[1:])
    co, ci_per_group, kh, kw = k_shape
    sh, sw = as_pair("stride", stride)
    dh, dw = as_pair("dilation", dilation)
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"{op}: groups must be an int, not {groups!r}")
    if sh < 1 or sw < 1:
        raise ValueError(f"{op}: stride must be positive, got {(sh, sw)}")
    if dh < 1 or dw < 1:
        raise ValueError(f"{op}: dilation must be positive, got {(dh, dw)}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be positive, got {groups}")
    if ci % groups or co % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both the {ci} input channels of X "
            f"(shape {x_shape}) and the {co} output channels of K (shape {k_shape})"
        )
    if ci != ci_per_group * groups:
        expected = ci_per_group * groups
        raise ValueError(
            f"{op}: X has {ci} input channels but K expects {expected} "
            f"(X shape {x_shape}, K shape {k_shape}, groups={groups}); they must be equal"
        )
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            pads = (0, 0, 0, 0)
        elif mode == "same":
            for axis, size, step in (("h", h, sh), ("w", w, sw)):
                if size is None and step > 1:
                    raise ValueError(
                        f"{op}: padding='same' with stride {(sh, sw)} needs extent {axis} of "
                        f"X (shape {x_shape}, laid out as (n, ci, h, w)), which is unknown "
                        "until run time: a strided 'same' padding depends on it. Give the "
                        f"graph's input a static {axis}, or give the padding as numbers"
                    )
            pads = (*_same_pads(h, kh, sh, dh), *_same_pads(w, kw, sw, dw))
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', "
                             f"not {padding!r}")  # fmt: skip
    else:
        ph, pw = as_pair("padding", padding)
        if ph < 0 or pw < 0:
            raise ValueError(f"{op}: padding must not be negative, got {(ph, pw)}")
        pads = (ph, ph, pw, pw)
    # An unknown extent's output is unknown too, and whether the kernel fits in it can only
    # be seen at run time (the framework's kernel then raises).
    oh = None if h is None else output_size(h, kh, sh, dh, pads[0] + pads[1])
    ow = None if w is None else output_size(w, kw, sw, dw, pads[2] + pads[3])
    if (oh is not None and oh < 1) or (ow is not None and ow < 1):
        raise ValueError(
            f"{op}: the output would be empty ({oh}x{ow}): the {kh}x{kw} kernel of K "
            f"(shape {k_shape}) with dilation {(dh, dw)} spans more than the {h}x{w} input "
            f"of X (shape {x_shape}) padded by {pads} (top, bottom, left, right); the "
            "kernel must not be larger than the padded input"
        )
    return ConvGeometry(n, ci, cast(int, h), cast(int, w), co, kh, kw, (sh, sw), (dh, dw), pads,
                        groups, cast(int, oh), cast(int, ow))  # fmt: skip


def _one_window(size: int, kernel: int, dilation: int, before: int) -> tuple[int, int] | None:
    """(input extent kept, padding after) for an axis whose output extent is 1, run at
    stride 1; None when its one window lies wholly in the padding before the input (then
    there is nothing to crop to)."""
    span = dilation * (kernel - 1) + 1
    if span <= before:
        return None
    keep = min(size, span - before)
    return keep, span - before - keep


@lru_cache(maxsize=1024)
def canonical_geometry(g: ConvGeometry) -> ConvGeometry:
    """``g`` with the stride of every axis whose output extent is 1 set to 1, the input
    cropped to that one window and the padding after it adjusted: the same output, with
    no stride a kernel could mishandle (TensorFlow 2.21's oneDNN kernel gives wrong values
    on some strided convolutions one output wide: docs/known-bugs.md). Returns ``g`` itself
    when nothing changes; the caller crops X to ``(h, w)`` of the result.

    Examples:
        >>> g = conv_geometry((2, 1, 7, 4), (2, 1, 3, 2), stride=(1, 3))
        >>> c = canonical_geometry(g)
        >>> c.stride, (c.h, c.w), c.output_shape == g.output_shape
        ((1, 1), (7, 2), True)
    """
    (sh, sw), (dh, dw) = g.stride, g.dilation
    pt, pb, pl, pr = g.pads
    h, w = g.h, g.w
    if g.oh == 1 and sh > 1 and (rows := _one_window(g.h, g.kh, dh, pt)) is not None:
        (h, pb), sh = rows, 1
    if g.ow == 1 and sw > 1 and (cols := _one_window(g.w, g.kw, dw, pl)) is not None:
        (w, pr), sw = cols, 1
    if (sh, sw) == g.stride:
        return g
    return ConvGeometry(g.n, g.ci, h, w, g.co, g.kh, g.kw, (sh, sw), g.dilation,
                        (pt, pb, pl, pr), g.groups, g.oh, g.ow)  # fmt: skip
