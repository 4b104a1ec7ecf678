"""chanconv's JAX backend, as a plugin package.

Installing this distribution registers :class:`JaxBackend` under chanconv's entry-point
group ``chanconv.backends`` (see ``pyproject.toml``); nothing in chanconv itself knows about
JAX. ``jax.Array`` inputs then dispatch here, also inside ``jax.jit``, ``jax.grad`` and
``jax.vmap`` (tracers are ``jax.Array`` instances, and chanconv's shape logic reads only
static shapes).
"""

from chanconv_jax.adapter import JaxBackend

__all__ = ["JaxBackend"]
__version__ = "0.1.0"
