"""d2l's JAX helpers that the section's JAX tab uses and that are not JAX's own functions
(reached through ``from chanconv import jax as d2l``)."""

from __future__ import annotations

#: The seed d2l's JAX tabs make their PRNG keys from.
SEED = 18


def get_seed() -> int:
    """A fixed seed for ``jax.random.PRNGKey``, as d2l's ``get_seed``."""
    return SEED
