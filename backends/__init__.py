"""chanconv's built-in adapters, one framework per module, installed as ``chanconv.backends``.

Each is registered under the entry-point group ``chanconv.backends`` in pyproject.toml; a
third-party package adds a backend the same way (see README, "Adding a backend").
"""
