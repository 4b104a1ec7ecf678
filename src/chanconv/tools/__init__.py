"""chanconv's tools, apart from the library: the command line (``python -m chanconv``), the
conformance ``check`` with its float64 oracle and reference data, the ``matrix`` report, the
benchmarks, the backend inventory and ``explain``'s figures. ``import chanconv`` loads none
of them."""
