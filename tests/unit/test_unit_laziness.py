"""The core never imports a framework it is not asked to use, and the adapters themselves
import without their frameworks."""

from __future__ import annotations

import json
import textwrap

FRAMEWORKS = ("torch", "tensorflow", "mxnet")


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_numpy_use_imports_no_other_framework(run_python):
    code = textwrap.dedent(
        """
        import json, sys

        import numpy as np

        import chanconv

        X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
        K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
        y = chanconv.corr2d_multi_in(X, K)
        assert chanconv.active_name() == "numpy"
        assert chanconv.backend_for([1.0, 2.0]) is None
        assert chanconv.backend_for(np.ones(2)).name == "numpy"
        table = chanconv.adapters()
        from chanconv import torch as d2l
        from chanconv import tensorflow as d2l_tf, mxnet as d2l_mx, pytorch, tf, mx
        bound = d2l.corr2d_multi_in, d2l_tf.corr2d, d2l_mx.corr2d_multi_in_out
        listing = dir(chanconv), dir(d2l), dir(d2l_tf), dir(d2l_mx)
        imported = {
            fw: sorted(m for m in sys.modules if m == fw or m.startswith(fw + "."))
            for fw in ("torch", "tensorflow", "mxnet")
        }
        print(json.dumps({
            "type": f"{type(y).__module__}.{type(y).__name__}",
            "value": y.tolist(),
            "adapters": sorted(table),
            "namespace": [d2l.backend_name, d2l_tf.backend_name, d2l_mx.backend_name],
            "imported": imported,
        }))
        """
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    report = _last_json(proc.stdout)
    assert report["type"] == "numpy.ndarray"
    assert report["value"] == [[56.0, 72.0], [104.0, 120.0]]
    assert {"numpy", "torch", "tensorflow", "mxnet"} <= set(report["adapters"])
    assert report["namespace"] == ["torch", "tensorflow", "mxnet"]
    assert report["imported"] == {fw: [] for fw in FRAMEWORKS}


def test_adapters_load_from_backend_modules_without_their_frameworks(run_python):
    # Every framework, numpy included, is made unimportable: importing the adapter modules,
    # instantiating the adapters and listing them must still work.
    code = textwrap.dedent(
        """
        import importlib, json, sys

        BLOCKED = {"numpy", "torch", "tensorflow", "mxnet"}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"blocked: {name}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        import chanconv
        from chanconv import registry
        from chanconv.protocol import ArrayBackend

        out = {}
        for name in ("numpy", "torch", "tensorflow", "mxnet"):
            module = importlib.import_module(f"chanconv.backends.{name}")
            adapter = chanconv.adapters()[name]
            out[name] = {
                "module": type(adapter).__module__,
                "same_class": type(adapter) is getattr(module, type(adapter).__name__),
                "protocol": isinstance(adapter, ArrayBackend),
                "origin": registry.origin(name),
                "framework": adapter.framework,
                "extra": adapter.extra,
            }
        out["leaked"] = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
        print(json.dumps(out))
        """
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    report = _last_json(proc.stdout)
    assert report.pop("leaked") == []
    classes = {"numpy": "NumpyBackend", "torch": "TorchBackend",
               "tensorflow": "TensorflowBackend", "mxnet": "MxnetBackend"}  # fmt: skip
    for name, cls in classes.items():
        assert report[name] == {
            "module": f"chanconv.backends.{name}",
            "same_class": True,
            "protocol": True,
            "origin": f"chanconv.backends.{name}:{cls}",
            "framework": name,
            "extra": name,
        }
