"""d2l-style use: ``from chanconv import torch as d2l`` (a namespace bound to one backend,
carrying d2l's aliases with that framework's meaning) and ``import chanconv as d2l``
(following the active backend); and the section's own code, verbatim but for the import
line, on every installed framework."""

from __future__ import annotations

import importlib
import textwrap

import numpy as np
import pytest

import chanconv
from chanconv.d2l import Namespace

X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
MULTI_IN = [[56.0, 72.0], [104.0, 120.0]]
MULTI_IN_OUT = [
    [[56.0, 72.0], [104.0, 120.0]],
    [[76.0, 100.0], [148.0, 172.0]],
    [[96.0, 128.0], [192.0, 224.0]],
]
K3 = [[[[v + offset for v in row] for row in channel] for channel in K] for offset in (0, 1, 2)]

#: What a framework's own tensor is: (module, class).
NATIVE = {
    "numpy": ("numpy", "ndarray"),
    "torch": ("torch", "Tensor"),
    "tensorflow": ("tensorflow", "Tensor"),
    "mxnet": ("mxnet.numpy", "ndarray"),
}

#: The objects d2l's tab for each framework binds these names to (the numpy namespace
#: follows the mxnet tab, with numpy in place of mxnet.np), as attribute paths into the
#: framework module.
D2L_ALIASES = {
    "numpy": {
        "tensor": "array", "zeros": "zeros", "ones": "ones", "stack": "stack",
        "concat": "concatenate", "matmul": "dot", "normal": "random.normal",
        "arange": "arange", "float32": "float32",
    },
    "torch": {
        "tensor": "tensor", "zeros": "zeros", "ones": "ones", "stack": "stack",
        "concat": "cat", "matmul": "matmul", "normal": "normal", "arange": "arange",
        "float32": "float32",
    },
    "tensorflow": {
        "tensor": "constant", "zeros": "zeros", "ones": "ones", "stack": "stack",
        "concat": "concat", "matmul": "matmul", "normal": "random.normal", "arange": "range",
        "float32": "float32", "reshape": "reshape", "reduce_sum": "reduce_sum",
    },
    "mxnet": {
        "tensor": "np.array", "zeros": "np.zeros", "ones": "np.ones", "stack": "np.stack",
        "concat": "np.concatenate", "matmul": "np.dot", "normal": "np.random.normal",
        "arange": "np.arange", "float32": "np.float32",
    },
}  # fmt: skip

#: d2l's ``normal``: (mean, std, shape) everywhere but TensorFlow's (shape, mean, std).
NORMAL_ARGS = {
    "numpy": (0, 1, (2, 3)),
    "torch": (0, 1, (2, 3)),
    "tensorflow": ((2, 3), 0, 1),
    "mxnet": (0, 1, (2, 3)),
}

ALIASES = ("tensor", "zeros", "ones", "stack", "concat", "reshape", "normal", "matmul",
           "reduce_sum", "numpy", "size", "arange", "float32")  # fmt: skip
OPERATIONS = ("corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1")


def _framework_object(framework: str, path: str):
    obj = importlib.import_module(framework)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _native_type(name: str) -> type:
    module, cls = NATIVE[name]
    return getattr(importlib.import_module(module), cls)


def _import_as_d2l(name: str) -> Namespace:
    scope: dict = {}
    exec(f"from chanconv import {name} as d2l", scope)
    return scope["d2l"]


# --- namespaces --------------------------------------------------------------------------


def test_namespace_ops_on_lists_return_the_backends_native_tensor(installed_builtin):
    d2l = _import_as_d2l(installed_builtin.name)
    assert isinstance(d2l, Namespace)
    assert d2l.backend_name == installed_builtin.name
    y = d2l.corr2d_multi_in(X, K)
    assert isinstance(y, _native_type(installed_builtin.name))
    assert d2l.numpy(y).tolist() == MULTI_IN
    y3 = d2l.corr2d_multi_in_out(X, K3)
    assert isinstance(y3, _native_type(installed_builtin.name))
    assert d2l.numpy(y3).tolist() == MULTI_IN_OUT
    assert chanconv.active_name() == "numpy"  # the namespace chose only for its own call


def test_namespace_aliases_mean_what_the_frameworks_d2l_tab_means(installed_builtin):
    d2l = _import_as_d2l(installed_builtin.name)
    for alias, path in D2L_ALIASES[installed_builtin.name].items():
        expected = _framework_object(installed_builtin.framework, path)
        assert getattr(d2l, alias) is expected, alias


def test_namespace_aliases_work_together_in_d2l_code(installed_builtin):
    name = installed_builtin.name
    d2l = _import_as_d2l(name)
    native = _native_type(name)
    x = d2l.reshape(d2l.arange(6, dtype=d2l.float32), (2, 3))
    assert isinstance(x, native)
    assert d2l.size(x) == 6
    assert isinstance(d2l.numpy(x), np.ndarray)
    assert d2l.numpy(x).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert d2l.numpy(d2l.reduce_sum(x, 0)).tolist() == [3, 5, 7]
    assert d2l.numpy(d2l.matmul(x, d2l.reshape(x, (3, 2)))).tolist() == [[10, 13], [28, 40]]
    assert d2l.numpy(d2l.stack((x, x), 0)).shape == (2, 2, 3)
    assert d2l.numpy(d2l.concat((x, x), 0)).shape == (4, 3)
    assert d2l.numpy(d2l.zeros((2, 3))).tolist() == [[0] * 3] * 2
    assert d2l.numpy(d2l.ones((2, 3))).tolist() == [[1] * 3] * 2
    t = d2l.tensor([[1.0, 2.0]])
    assert isinstance(t, native) and d2l.size(t) == 2


def test_normal_takes_each_frameworks_argument_order(installed_builtin):
    d2l = _import_as_d2l(installed_builtin.name)
    sample = d2l.normal(*NORMAL_ARGS[installed_builtin.name])
    assert isinstance(sample, _native_type(installed_builtin.name))
    assert d2l.numpy(sample).shape == (2, 3)


def test_every_namespace_offers_the_aliases_and_operations(builtin):
    # dir() needs no framework: it works for backends that are not installed too.
    namespace = getattr(chanconv, builtin.name)
    listed = dir(namespace)
    for attr in (*OPERATIONS, *ALIASES):
        assert attr in listed, attr


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("np", "numpy"), ("pytorch", "torch"), ("tf", "tensorflow"), ("mx", "mxnet")],
)
def test_alias_names_give_the_same_backends_namespace(alias, canonical):
    assert _import_as_d2l(alias).backend_name == canonical


def test_unknown_namespace_attribute_is_an_attribute_error(installed_builtin):
    d2l = _import_as_d2l(installed_builtin.name)
    with pytest.raises(AttributeError, match="no_such_alias"):
        _ = d2l.no_such_alias
    assert not hasattr(d2l, "no_such_alias")
    assert not hasattr(d2l, "__no_such_dunder__")


def test_a_registered_backend_gets_a_namespace_too(grid, grid_module):
    d2l = _import_as_d2l("grid")
    assert d2l.backend_name == "grid"
    assert _import_as_d2l("gridfw").backend_name == "grid"
    y = d2l.corr2d_multi_in(X, K)  # lists: the namespace's backend, not the active one
    assert isinstance(y, grid_module.Grid)
    assert d2l.numpy(y).tolist() == MULTI_IN
    assert d2l.tensor is grid_module.array
    assert d2l.numpy(d2l.reduce_sum(d2l.tensor([[1.0, 2.0], [3.0, 4.0]]), 0)).tolist() == [4, 6]
    assert chanconv.active_name() == "numpy"
    with chanconv.use_backend("grid"):  # and numpy's namespace wins over a grid choice
        assert type(_import_as_d2l("numpy").corr2d_multi_in(X, K)) is np.ndarray


# --- ``import chanconv as d2l`` -----------------------------------------------------------


def test_module_level_aliases_follow_the_active_backend(installed_builtin, grid, grid_module):
    import chanconv as d2l

    with chanconv.use_backend("numpy"):
        assert d2l.tensor is np.array
        assert d2l.matmul is np.dot
        assert type(d2l.corr2d_multi_in(X, K)) is np.ndarray
    name = installed_builtin.name
    with chanconv.use_backend(name):
        assert d2l.tensor is _framework_object(installed_builtin.framework,
                                               D2L_ALIASES[name]["tensor"])  # fmt: skip
        assert isinstance(d2l.corr2d_multi_in(X, K), _native_type(name))
    chanconv.set_backend("grid")
    assert d2l.tensor is grid_module.array
    assert isinstance(d2l.corr2d_multi_in(X, K), grid_module.Grid)
    chanconv.set_backend(None)
    assert d2l.tensor is np.array


def test_module_level_numpy_and_size_convert_tensors(grid):
    import chanconv as d2l

    y = d2l.corr2d_multi_in(X, K)
    assert isinstance(d2l.numpy(y), np.ndarray)
    assert d2l.numpy(y).tolist() == MULTI_IN
    assert d2l.size(y) == 4
    g = grid.asarray(X, "float32")
    assert d2l.numpy(g).tolist() == np.asarray(X, np.float32).tolist()
    assert d2l.size(g) == 18


def test_module_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = chanconv.no_such_name
    assert not hasattr(chanconv, "no_such_name")
    with pytest.raises(ImportError):
        exec("from chanconv import no_such_name", {})


def test_module_dir_lists_operations_aliases_and_backends():
    listed = dir(chanconv)
    for attr in (*OPERATIONS, *ALIASES, "numpy", "torch", "tensorflow", "mxnet",
                 "use_backend", "set_backend", "backend_for", "adapters"):  # fmt: skip
        assert attr in listed, attr


# --- the section's code, verbatim but for the import line --------------------------------

SECTION_CODE = {
    "torch": """
        from chanconv import torch as d2l
        import torch

        def corr2d_multi_in(X, K):
            # Iterate through the 0th dimension (channel) of K first, then add them up
            return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

        X = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                       [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
        K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])

        corr2d_multi_in(X, K)

        def corr2d_multi_in_out(X, K):
            # Iterate through the 0th dimension of K, and each time, perform
            # cross-correlation operations with input X. All of the results are
            # stacked together
            return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

        K = torch.stack((K, K + 1, K + 2), 0)
        K.shape

        corr2d_multi_in_out(X, K)

        def corr2d_multi_in_out_1x1(X, K):
            c_i, h, w = X.shape
            c_o = K.shape[0]
            X = X.reshape((c_i, h * w))
            K = K.reshape((c_o, c_i))
            # Matrix multiplication in the fully connected layer
            Y = torch.matmul(K, X)
            return Y.reshape((c_o, h, w))

        X = torch.normal(0, 1, (3, 3, 3))
        K = torch.normal(0, 1, (2, 3, 1, 1))
        Y1 = corr2d_multi_in_out_1x1(X, K)
        Y2 = corr2d_multi_in_out(X, K)
        assert float(torch.abs(Y1 - Y2).sum()) < 1e-6
    """,
    "tensorflow": """
        from chanconv import tensorflow as d2l
        import tensorflow as tf

        def corr2d_multi_in(X, K):
            return tf.reduce_sum([d2l.corr2d(x, k) for x, k in zip(X, K)], axis=0)

        X = tf.constant([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                       [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
        K = tf.constant([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])

        corr2d_multi_in(X, K)

        def corr2d_multi_in_out(X, K):
            # Iterate through the 0th dimension of K, and each time, perform
            # cross-correlation operations with input X. All of the results are
            # stacked together
            return tf.stack([corr2d_multi_in(X, k) for k in K], 0)

        K = tf.stack((K, K + 1, K + 2), 0)
        K.shape

        corr2d_multi_in_out(X, K)

        def corr2d_multi_in_out_1x1(X, K):
            c_i, h, w = X.shape
            c_o = K.shape[0]
            X = tf.reshape(X, (c_i, h * w))
            K = tf.reshape(K, (c_o, c_i))
            # Matrix multiplication in the fully connected layer
            Y = tf.matmul(K, X)
            return tf.reshape(Y, (c_o, h, w))

        X = tf.random.normal((3, 3, 3), 0, 1)
        K = tf.random.normal((2, 3, 1, 1), 0, 1)
        Y1 = corr2d_multi_in_out_1x1(X, K)
        Y2 = corr2d_multi_in_out(X, K)
        assert float(tf.reduce_sum(tf.abs(Y1 - Y2))) < 1e-6
    """,
    "mxnet": """
        from chanconv import mxnet as d2l
        from mxnet import np, npx
        npx.set_np()

        def corr2d_multi_in(X, K):
            # Iterate through the 0th dimension (channel) of K first, then add them up
            return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

        X = np.array([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                       [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
        K = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])

        corr2d_multi_in(X, K)

        def corr2d_multi_in_out(X, K):
            # Iterate through the 0th dimension of K, and each time, perform
            # cross-correlation operations with input X. All of the results are
            # stacked together
            return np.stack([corr2d_multi_in(X, k) for k in K], 0)

        K = np.stack((K, K + 1, K + 2), 0)
        K.shape

        corr2d_multi_in_out(X, K)

        def corr2d_multi_in_out_1x1(X, K):
            c_i, h, w = X.shape
            c_o = K.shape[0]
            X = X.reshape((c_i, h * w))
            K = K.reshape((c_o, c_i))
            # Matrix multiplication in the fully connected layer
            Y = np.dot(K, X)
            return Y.reshape((c_o, h, w))

        X = np.random.normal(0, 1, (3, 3, 3))
        K = np.random.normal(0, 1, (2, 3, 1, 1))
        Y1 = corr2d_multi_in_out_1x1(X, K)
        Y2 = corr2d_multi_in_out(X, K)
        assert float(np.abs(Y1 - Y2).sum()) < 1e-6
    """,
}
# d2l has no numpy tab: it is the mxnet tab with NumPy in place of mxnet.np.
SECTION_CODE["numpy"] = SECTION_CODE["mxnet"].replace(
    "from chanconv import mxnet as d2l\n        from mxnet import np, npx\n        npx.set_np()",
    "from chanconv import numpy as d2l\n        import numpy as np",
)


@pytest.fixture
def mxnet_np_mode_restored(installed_builtin):
    """The mxnet tab calls ``npx.set_np()``, which changes MXNet's (thread-local) array
    semantics; put them back so other tests see MXNet as they found it."""
    if installed_builtin.name != "mxnet":
        yield
        return
    import mxnet as mx

    shape, array = mx.util.is_np_shape(), mx.util.is_np_array()
    yield
    if shape or array:
        mx.util.set_np(shape=shape, array=array)
    else:
        mx.util.reset_np()


def test_the_sections_code_runs_verbatim(installed_builtin, mxnet_np_mode_restored):
    name = installed_builtin.name
    source = textwrap.dedent(SECTION_CODE[name])
    assert source.lstrip().startswith(f"from chanconv import {name} as d2l\n")
    scope: dict = {"__name__": f"d2l_section_{name}"}
    exec(compile(source, f"<d2l section, {name} tab>", "exec"), scope)

    native = _native_type(name)
    assert isinstance(scope["d2l"], Namespace) and scope["d2l"].backend_name == name
    assert isinstance(scope["Y1"], native) and isinstance(scope["Y2"], native)
    # the book's functions, on the book's data, give the book's numbers
    adapter = chanconv.get_adapter(name)
    x, k, k3 = (adapter.asarray(v, "float32") for v in (X, K, K3))
    y = scope["corr2d_multi_in"](x, k)
    assert isinstance(y, native)
    assert adapter.to_numpy(y).tolist() == MULTI_IN
    y3 = scope["corr2d_multi_in_out"](x, k3)
    assert isinstance(y3, native)
    assert adapter.to_numpy(y3).tolist() == MULTI_IN_OUT
    y1x1 = scope["corr2d_multi_in_out_1x1"](x, adapter.asarray([[[[1.0]], [[2.0]]]], "float32"))
    expected = (np.asarray(X[0]) + 2 * np.asarray(X[1]))[None].tolist()
    assert adapter.to_numpy(y1x1).tolist() == expected
