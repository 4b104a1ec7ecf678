"""The repository's own tests (unit, examples) take the same options as the shipped
conformance suite: ``pytest tests --backend NAME``, else ``$CHANCONV_BACKEND``, else numpy."""

from chanconv.testing.fixtures import *  # noqa: F403 (pytest finds fixtures by name)
