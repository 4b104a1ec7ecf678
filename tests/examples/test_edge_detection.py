"""examples/edge_detection.py: the chapter's edge detector, learned on the backend under test
by that framework's own optimizer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).parents[2] / "examples" / "edge_detection.py"


def load_example():
    spec = importlib.util.spec_from_file_location("edge_detection", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_edge_detector_is_learned_by_gradient_descent(backend_name):
    kernel = load_example().learn_edge_kernel(backend_name)
    np.testing.assert_allclose(kernel, [[1.0, -1.0]], atol=0.05)
