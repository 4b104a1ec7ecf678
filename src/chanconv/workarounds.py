"""Declared limits of a framework's own convolution kernel, and what chanconv does instead.

An adapter with ``chanconv.protocol.NativeLimits`` lists, in ``native_limits()``, every
geometry on which its framework's kernel gives a wrong answer (a kernel bug) or refuses to
compute (a missing case). The core consults the list: ``auto`` never chooses the native
kernel there, and an explicit ``algorithm="native"`` runs chanconv's ``im2col`` instead (the
answer stays right; ``chanconv.algorithms.native_limit`` says why). The records are
also what ``python -m chanconv check`` prints as the active workarounds, and what
docs/known-bugs.md documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chanconv.geometry import ConvGeometry


@dataclass(frozen=True)
class NativeLimit:
    """One geometry class the framework's native convolution must not run."""

    #: Short stable identifier, as docs/known-bugs.md names it.
    key: str
    #: Framework and the versions it was seen in, e.g. ``"TensorFlow 2.21"``.
    framework: str
    #: ``"wrong result"`` (a kernel bug) or ``"refused"`` (the kernel raises).
    kind: str
    #: The condition in words, as the documentation states it.
    condition: str
    #: What chanconv does instead.
    instead: str
    #: Whether the (canonical) geometry in this dtype meets the condition.
    applies: Callable[[ConvGeometry, str], bool]

    def describe(self) -> str:
        return f"{self.key} ({self.framework}, {self.kind}): {self.condition}; {self.instead}"
