"""What each backend's own compilers are, for the conformance suite's compiled modes
(``test_compiled.py``), and the documented capability of a backend that has none.

A *mode* turns a function of tensors into the framework's compiled form of it:
``tf.function`` (with a ``None`` batch in its signature), the same with XLA
(``jit_compile=True``), ``torch.compile(fullgraph=True)`` from cold. The table
``COMPILED_MODES`` lists each backend's; NumPy has no compiler, so its entry is empty and
its mode tests check that this is so rather than skipping (docs/compiled.md). A backend
that is not built in declares its own modes, and compiles them, through its conformance
helpers' optional [CompiledModeHelpers][chanconv.protocol.CompiledModeHelpers] members
(the jax plugin: ``jax.jit``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from chanconv.protocol import CompiledModeHelpers
from chanconv.testing import frameworks

#: Each backend's compiled modes, by name; an empty tuple: the backend has no compiler.
#: MXNet's compiler is Gluon's ``hybridize``, which compiles blocks, not functions: its
#: compiled checks live with the layer (``test_layer_modes.py``).
COMPILED_MODES: dict[str, tuple[str, ...]] = {
    "numpy": (),
    "torch": ("torch.compile", "torch.compile-dynamic"),
    "tensorflow": ("tf.function", "tf.function-xla"),
    "mxnet": (),
}


#: Each third-party backend's helpers, by the compiled modes they declared in ``modes``.
_PLUGIN_COMPILERS: dict[str, CompiledModeHelpers] = {}


def modes(backend_name: str) -> tuple[str, ...]:
    if backend_name in COMPILED_MODES:
        return COMPILED_MODES[backend_name]
    helpers = frameworks.plugin_helpers(backend_name)
    if not isinstance(helpers, CompiledModeHelpers):
        return ()
    found = tuple(helpers.compiled_modes())
    # compile_function is called with a mode alone: remember whose it is.
    _PLUGIN_COMPILERS.update(dict.fromkeys(found, helpers))
    return found


def compile_function(
    mode: str, fn: Callable[..., Any], shapes: Sequence[tuple[int, ...]], batched: Sequence[bool]
) -> Callable[..., Any]:
    """``fn`` compiled by ``mode``. ``shapes`` are the arguments' shapes; where ``batched``
    says so, the leading dimension is left unknown (``None`` in TensorFlow's signature,
    dynamic under ``torch.compile-dynamic``)."""
    if mode.startswith("tf.function"):
        tf = importlib.import_module("tensorflow")
        signature = [
            tf.TensorSpec([None, *shape[1:]] if unknown else list(shape), tf.float32)
            for shape, unknown in zip(shapes, batched, strict=True)
        ]
        return tf.function(fn, input_signature=signature, jit_compile=mode.endswith("xla"))  # type: ignore[no-any-return]
    if mode.startswith("torch.compile"):
        torch = importlib.import_module("torch")
        torch._dynamo.reset()  # from cold: nothing traced or cached before
        from chanconv import operations

        operations._plans.clear()
        # Dynamo's full-graph capture and AOTAutograd are what chanconv's Python must pass;
        # Inductor's C++ code generation after them is torch's own and takes minutes on a
        # small machine, so the suite stops at aot_eager (the bench compiles with Inductor).
        return torch.compile(fn, fullgraph=True, dynamic=mode.endswith("dynamic") or None,  # type: ignore[no-any-return]
                             backend="aot_eager")  # fmt: skip
    if mode in _PLUGIN_COMPILERS:
        return _PLUGIN_COMPILERS[mode].compile_function(mode, fn, shapes, batched)
    raise ValueError(f"unknown compiled mode {mode!r}")
