"""The section's example data and the outputs every version of the book prints."""

from __future__ import annotations

X = [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
     [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]  # fmt: skip
K = [[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]]

#: corr2d_multi_in(X, K)
MULTI_IN = [[56.0, 72.0], [104.0, 120.0]]


def kernel_plus(offset: float) -> list[list[list[float]]]:
    """K + offset, elementwise, as the section builds its 3-output kernel."""
    return [[[v + offset for v in row] for row in channel] for channel in K]


#: K stacked with K + 1 and K + 2: shape (3, 2, 2, 2).
K3 = [kernel_plus(0), kernel_plus(1), kernel_plus(2)]

#: corr2d_multi_in_out(X, K3)
MULTI_IN_OUT = [[[56.0, 72.0], [104.0, 120.0]],
                [[76.0, 100.0], [148.0, 172.0]],
                [[96.0, 128.0], [192.0, 224.0]]]  # fmt: skip

#: The section checks the 1x1 matmul form against the general one to this bound.
ONE_BY_ONE_TOLERANCE = 1e-6
