"""chanconv's conformance suite, shipped in the wheel so that any backend, built-in or from a
plugin, is held to the same items::

    pytest --pyargs chanconv.testing --backend NAME [--report-json FILE] [--xfail-file FILE]

Every item compares chanconv with a float64 loop oracle (``chanconv.testing.oracle``) or
with the framework's own API (``chanconv.testing.frameworks``), never with chanconv
itself. Options are described in ``chanconv.testing.plugin``.
"""
