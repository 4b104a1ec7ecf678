"""Kernel algebra from the section's exercises: folding two convolutions into one
(exercise 1) and grouped convolution as a block-diagonal channel matrix (exercise 7)."""

from __future__ import annotations

from chanconv.algorithms import pad_axis
from chanconv.inputs import kind_source, operand, pick_backend, unify_dtypes
from chanconv.protocol import Tensor


def compose_kernels(K1: object, K2: object, *, first_stride: int = 1) -> Tensor:
    """The single kernel that does what K1 followed by K2 does, with no nonlinearity between.

    K1 is (c, ci, kh1, kw1), applied first with stride ``first_stride``; K2 is
    (co, c, kh2, kw2). The result has shape ``(co, ci, kh1 + s*(kh2-1), kw1 + s*(kw2-1))`` for
    s = first_stride, and ``conv2d(conv2d(X, K1, stride=s), K2, stride=t)`` equals
    ``conv2d(X, compose_kernels(K1, K2, first_stride=s), stride=s*t)`` for unpadded
    (``"valid"``) convolutions, up to rounding. With s = t = 1 that is the exercise's
    (kh1+kh2-1) x (kw1+kw2-1) kernel. Padding breaks the identity at the borders: the second
    convolution would pad the intermediate result with zeros, not with K1's response to zeros.

    Args:
        K1: The first kernel, shape (c, ci, kh1, kw1): a tensor of any supported framework
            or nested lists of numbers (which become a float32 tensor of the active
            backend).
        K2: The second kernel, shape (co, c, kh2, kw2), its c equal to K1's first axis.
        first_stride: The stride s of the first convolution, a positive int (default 1);
            it spreads K2's taps s apart in the composed kernel.

    Returns:
        The composed (co, ci, kh1 + s(kh2-1), kw1 + s(kw2-1)) kernel, a tensor of the
            framework (and array kind) of the tensor arguments, in their common floating dtype.

    Raises:
        TypeError: A kernel is neither a tensor nor nested lists of real numbers, has a
            non-floating dtype, or K1 and K2 are tensors of two different frameworks.
        ValueError: ``first_stride`` is not a positive int; a kernel is not 4-D or is
            empty; or K1's output channels differ from K2's input channels.

    Examples:
        A 2x2 kernel followed by the edge detector [1, -1] is one 2x3 kernel:

        >>> compose_kernels([[[[1, 2], [3, 4]]]], [[[[1, -1]]]])
        array([[[[ 1.,  1., -2.],
                 [ 3.,  1., -4.]]]], dtype=float32)
    """
    if isinstance(first_stride, bool) or not isinstance(first_stride, int) or first_stride < 1:
        raise ValueError(
            f"compose_kernels: first_stride must be a positive int, not {first_stride!r}"
        )
    backend = pick_backend(K1=K1, K2=K2)
    k1 = operand(backend, "K1", K1, 4, "(c, ci, kh1, kw1)")
    k2 = operand(backend, "K2", K2, 4, "(co, c, kh2, kw2)")
    (c, ci, kh1, kw1), (co, c2, kh2, kw2) = k1.shape, k2.shape
    if c != c2:
        raise ValueError(
            f"compose_kernels: K1 has {c} output channels but K2 expects {c2} input channels "
            f"(K1 shape {k1.shape}, K2 shape {k2.shape}); they must be equal"
        )
    dtype, (a, b) = unify_dtypes(backend, k1, k2)
    s = first_stride
    kh, kw = kh1 + s * (kh2 - 1), kw1 + s * (kw2 - 1)
    flat = backend.reshape(a, (c, ci * kh1 * kw1))
    total: Tensor = None
    for i in range(kh2):
        for j in range(kw2):
            # Tap (i, j) of K2 reads K1's response s*i rows and s*j columns further on.
            term = backend.reshape(backend.matmul(b[:, :, i, j], flat), (co, ci, kh1, kw1))
            term = pad_axis(backend, term, s * i, kh - kh1 - s * i, 2, dtype)
            term = pad_axis(backend, term, s * j, kw - kw1 - s * j, 3, dtype)
            total = term if total is None else total + term
    like = kind_source(k1, k2)
    return total if like is None else backend.restore_kind(total, like)


def block_diagonal_kernel(K: object, groups: int) -> Tensor:
    """The dense (co, ci, kh, kw) kernel equivalent to grouped kernel K (co, ci/groups,
    kh, kw): seen as a (co, ci) matrix per tap, it is block diagonal with ``groups`` blocks,
    zero elsewhere. ``conv2d(X, K, groups=g)`` equals ``conv2d(X, block_diagonal_kernel(K,
    g))`` while costing 1/g of its multiplications (see ``conv2d_cost``).

    Args:
        K: The grouped kernel, shape (co, ci/groups, kh, kw), as ``conv2d`` takes with
            ``groups``: a tensor of any supported framework or nested lists of numbers
            (which become a float32 tensor of the active backend).
        groups: The number of groups, a positive int dividing co; output channels
            ``[g co/groups, (g+1) co/groups)`` read input channels
            ``[g ci/groups, (g+1) ci/groups)``.

    Returns:
        The dense (co, ci, kh, kw) kernel, ci being groups times K's second axis; a tensor
            of K's framework (and array kind) and floating dtype.

    Raises:
        TypeError: K is neither a tensor nor nested lists of real numbers, or has a
            non-floating dtype.
        ValueError: ``groups`` is not a positive int or does not divide co; K is not 4-D
            or is empty.

    Examples:
        Two groups of one channel each: the 1x1 kernel's (co, ci) matrix is diagonal.

        >>> block_diagonal_kernel([[[[1]]], [[[2]]]], 2)[:, :, 0, 0]
        array([[1., 0.],
               [0., 2.]], dtype=float32)
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"block_diagonal_kernel: groups must be a positive int, not {groups!r}")
    backend = pick_backend(K=K)
    k = operand(backend, "K", K, 4, "(co, ci/groups, kh, kw)")
    co, cig = k.shape[:2]
    if co % groups:
        raise ValueError(
            f"block_diagonal_kernel: groups={groups} must divide the {co} output channels of "
            f"K (shape {k.shape})"
        )
    dtype, (kt,) = unify_dtypes(backend, k)
    cog = co // groups
    blocks = []
    for g in range(groups):
        rows = kt[g * cog : (g + 1) * cog, :, :, :]  # every axis named, as the standard asks
        blocks.append(pad_axis(backend, rows, g * cig, (groups - 1 - g) * cig, 1, dtype))
    dense = blocks[0] if groups == 1 else backend.concat(blocks, axis=0)
    return dense if not k.is_tensor else backend.restore_kind(dense, k.original)
