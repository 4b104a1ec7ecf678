"""What a convolution costs, from its shapes alone (the section's exercises 2 and 3).

Counting conventions, the ones a plain loop implementation has (the test suite counts
them with such a loop):

* forward: every output element is a sum of ci/groups * kh * kw products, padding zeros
  included; a sum of m terms costs m - 1 additions, and a bias one more;
* backward, kernel: each kernel entry sums n*oh*ow products over the padded input;
* backward, input: each real (unpadded) input pixel sums the products of the kernel taps
  and output gradients that touched it; products that would land in the padding are not
  computed;
* backward, bias: each bias entry sums n*oh*ow output gradients;
* memory: the tensors that must be held, in bytes of ``dtype``. Forward: input, kernel,
  bias, output. Backward: the input and kernel kept from the forward pass, the incoming
  output gradient, and the gradients of input, kernel and bias.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from chanconv.algorithms import ITEMSIZE
from chanconv.geometry import ConvGeometry, IntPair, Padding, conv_geometry


@dataclass(frozen=True)
class ConvCost:
    """Operation counts and memory of one convolution's forward and backward pass.

    Examples:
        >>> c = conv2d_cost((1, 3, 3), (1, 1, 2, 2))
        >>> c.output_shape, c.multiplications, c.additions, c.forward_flops
        ((1, 1, 2, 2), 16, 12, 28)
    """

    input_shape: tuple[int, int, int, int]
    kernel_shape: tuple[int, int, int, int]
    output_shape: tuple[int, int, int, int]
    dtype: str
    multiplications: int
    additions: int
    forward_bytes: int
    backward_multiplications: int
    backward_additions: int
    backward_bytes: int

    @property
    def forward_flops(self) -> int:
        """Multiplications plus additions of the forward pass."""
        return self.multiplications + self.additions

    @property
    def backward_flops(self) -> int:
        """Multiplications plus additions of the backward pass (input and kernel gradients,
        and the bias gradient if there is a bias)."""
        return self.backward_multiplications + self.backward_additions

    def as_dict(self) -> dict[str, object]:
        """Every field and both totals, for printing or JSON."""
        return {**asdict(self), "forward_flops": self.forward_flops,
                "backward_flops": self.backward_flops}  # fmt: skip


def _coverage(size: int, kernel: int, stride: int, dilation: int, pad: int, out: int) -> list[int]:
    """For each real input position along one axis, how many (output, tap) pairs read it."""
    counts = [0] * size
    for o in range(out):
        for t in range(kernel):
            pos = o * stride + t * dilation - pad
            if 0 <= pos < size:
                counts[pos] += 1
    return counts


def _cost(g: ConvGeometry, dtype: str, bias: bool) -> ConvCost:
    item = ITEMSIZE[dtype]
    n = g.n
    if n is None:  # only a traced graph leaves the batch unknown, never a cost query
        raise ValueError("conv2d_cost: the batch size must be known")
    taps = (g.ci // g.groups) * g.kh * g.kw  # products per output element
    outputs = n * g.co * g.oh * g.ow
    mults = outputs * taps
    adds = outputs * (taps - 1) + (outputs if bias else 0)
    x_size, k_size = n * g.ci * g.h * g.w, g.co * (g.ci // g.groups) * g.kh * g.kw
    b_size = g.co if bias else 0
    per_image_out = n * g.oh * g.ow  # terms each kernel or bias gradient entry sums

    rows = _coverage(g.h, g.kh, g.stride[0], g.dilation[0], g.pads[0], g.oh)
    cols = _coverage(g.w, g.kw, g.stride[1], g.dilation[1], g.pads[2], g.ow)
    cog = g.co // g.groups
    dx_products = n * g.ci * cog * sum(rows) * sum(cols)
    dx_touched = n * g.ci * sum(1 for r in rows if r) * sum(1 for c in cols if c)
    dk_products = k_size * per_image_out
    back_mults = dx_products + dk_products
    back_adds = (dx_products - dx_touched) + k_size * (per_image_out - 1)
    if bias:
        back_adds += g.co * (per_image_out - 1)
    return ConvCost(
        input_shape=(n, g.ci, g.h, g.w),
        kernel_shape=g.kernel_shape,
        output_shape=(n, g.co, g.oh, g.ow),
        dtype=dtype,
        multiplications=mults,
        additions=adds,
        forward_bytes=(x_size + k_size + b_size + outputs) * item,
        backward_multiplications=back_mults,
        backward_additions=back_adds,
        backward_bytes=(x_size + k_size + outputs + x_size + k_size + b_size) * item,
    )


def conv2d_cost(
    input_shape: tuple[int, ...],
    kernel_shape: tuple[int, ...],
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    bias: bool = False,
    dtype: str = "float32",
) -> ConvCost:
    """Multiplications, additions and memory of ``conv2d`` on these shapes, forward and
    backward. ``input_shape`` is (n, ci, h, w) or (ci, h, w).

    Args:
        input_shape: The input's shape, (n, ci, h, w) or one image's (ci, h, w) (counted
            as n = 1); positive ints.
        kernel_shape: The kernel's shape, (co, ci/groups, kh, kw); positive ints.
        stride: An int or an (sh, sw) pair, as in ``conv2d``.
        padding: An int, a (ph, pw) pair, ``"valid"`` or ``"same"``, as in ``conv2d``.
            Padding zeros count as products in the forward pass.
        dilation: An int or a (dh, dw) pair, as in ``conv2d``.
        groups: The number of channel groups, as in ``conv2d``.
        bias: Whether a bias is added: one more addition per output element, a (co,)
            tensor in memory and its gradient in the backward pass.
        dtype: The element type memory is counted in: ``"float16"``, ``"bfloat16"``,
            ``"float32"`` (the default) or ``"float64"``.

    Returns:
        A [`ConvCost`][chanconv.ConvCost] with the shapes, the forward and backward
            multiplications and additions, and the bytes each pass holds.

    Raises:
        TypeError: ``stride``, ``padding``, ``dilation`` or ``groups`` has the wrong type.
        ValueError: An unknown ``dtype``; a shape that is not 4 (or 3) positive ints; or
            a geometry ``conv2d`` would refuse (channels or groups that do not match, a
            stride or dilation below 1, a negative or unknown padding, a kernel larger than
            the padded input).

    Examples:
        The section's discussion: a 256x256 image with 128 input and 128 output channels
        and a 5x5 kernel (padded to keep its size) needs over 53 billion operations:

        >>> c = conv2d_cost((128, 256, 256), (128, 128, 5, 5), padding="same")
        >>> c.multiplications + c.additions
        53678702592
    """
    if dtype not in ITEMSIZE:
        raise ValueError(f"dtype must be one of {', '.join(ITEMSIZE)}, not {dtype!r}")
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    for name, dims in (("input_shape", shape), ("kernel_shape", tuple(kernel_shape))):
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
            raise ValueError(f"conv2d_cost: {name} must hold positive ints, got {dims}")
    g = conv_geometry(
        shape, tuple(kernel_shape), stride=stride, padding=padding, dilation=dilation,
        groups=groups, op="conv2d_cost",
    )  # fmt: skip
    return _cost(g, dtype, bias)
