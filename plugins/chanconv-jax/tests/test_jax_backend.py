"""The jax plugin's own tests: what the shipped conformance suite does not reach. Every
public operation and algorithm under jax.jit, jax.grad and jax.vmap; the dtype rule; the
Flax layer trained by optax; the book's JAX tab; the plugin as a distribution."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chanconv
from chanconv import registry
from chanconv.testing import oracle

ALGORITHMS = ["auto", "direct", "im2col", "native"]
#: (stride, padding, dilation, groups): symmetric, asymmetric, "same" with an even kernel
#: (asymmetric padding), "valid", dilation and groups together.
SETTINGS = [
    ((1, 1), (0, 0), (1, 1), 1),
    ((2, 1), (1, 2), (1, 1), 1),
    ((1, 1), "same", (1, 1), 2),
    ((2, 2), "valid", (2, 1), 1),
    ((1, 2), (2, 2), (1, 2), 2),
]
IDS = ["plain", "asym-pad", "same-even", "valid-dilated", "dilated-grouped"]


def _problem(groups, seed=0, kernel=(2, 3)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 7, 8)).astype("float32")
    k = rng.standard_normal((6, 4 // groups, *kernel)).astype("float32")
    b = rng.standard_normal(6).astype("float32")
    return x, k, b


def _oracle(x, k, b, stride, padding, dilation, groups):
    h, w = x.shape[2:]
    kh, kw = k.shape[2:]
    pads = oracle.pads_for(h, w, kh, kw, stride, padding, dilation)
    geometry = dict(stride=stride, pads=pads, dilation=dilation, groups=groups)
    return oracle.conv2d(x.astype(np.float64), k.astype(np.float64), b.astype(np.float64),
                         **geometry), geometry  # fmt: skip


def test_jax_arrays_dispatch_to_the_plugin_from_its_own_distribution():
    adapter = chanconv.backend_for(jnp.zeros(3))
    assert adapter is chanconv.get_adapter("jax")
    assert registry.origin("jax") == "chanconv_jax:JaxBackend"
    assert registry.distribution("jax") == "chanconv-jax" and registry.is_third_party("jax")
    assert registry.install_command("jax") == "pip install chanconv-jax"
    y = chanconv.corr2d_multi_in(jnp.asarray([[[0.0, 1, 2], [3, 4, 5], [6, 7, 8]],
                                              [[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]]),
                                 jnp.asarray([[[0.0, 1], [2, 3]], [[1.0, 2], [3, 4]]]))  # fmt: skip
    assert isinstance(y, jax.Array) and np.asarray(y).tolist() == [[56, 72], [104, 120]]


def test_chanconv_itself_imports_no_jax_until_a_jax_array_is_used():
    code = textwrap.dedent("""
        import sys
        import chanconv
        assert "jax" in chanconv.adapters()          # the plugin's adapter is loaded ...
        chanconv.corr2d([[1.0, 2.0], [3.0, 4.0]], [[1.0]])
        assert "jax" not in sys.modules, "chanconv imported jax"   # ... but not jax
    """)
    env = {k: v for k, v in os.environ.items() if k != "CHANCONV_BACKEND"}  # lists: numpy
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_conv2d_under_jit_equals_eager_and_the_oracle(algorithm, setting):
    stride, padding, dilation, groups = setting
    x, k, b = _problem(groups)
    want, _ = _oracle(x, k, b, stride, padding, dilation, groups)

    def f(x, k, b):
        return chanconv.conv2d(x, k, b, stride=stride, padding=padding, dilation=dilation,
                               groups=groups, algorithm=algorithm)  # fmt: skip

    eager = f(jnp.asarray(x), jnp.asarray(k), jnp.asarray(b))
    jitted = jax.jit(f)(jnp.asarray(x), jnp.asarray(k), jnp.asarray(b))
    assert isinstance(jitted, jax.Array) and jitted.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(jitted), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_jax_grad_of_conv2d_under_jit_matches_the_oracle_backward(algorithm, setting):
    stride, padding, dilation, groups = setting
    x, k, b = _problem(groups, seed=1)
    y, geometry = _oracle(x, k, b, stride, padding, dilation, groups)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    want_dx, want_dk, want_db = oracle.conv2d_vjp(x.astype(np.float64), k.astype(np.float64),
                                                  dy, **geometry)  # fmt: skip

    def loss(x, k, b):
        out = chanconv.conv2d(x, k, b, stride=stride, padding=padding, dilation=dilation,
                              groups=groups, algorithm=algorithm)  # fmt: skip
        return (out * jnp.asarray(dy, jnp.float32)).sum()

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*map(jnp.asarray, (x, k, b)))
    for got, want in zip(grads, (want_dx, want_dk, want_db), strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_vmap_over_images_equals_one_batched_call(algorithm):
    x, k, b = _problem(2, seed=3)

    def one(image):  # (ci, h, w): the core sees one unbatched image per example
        return chanconv.conv2d(image, jnp.asarray(k), jnp.asarray(b), padding="same", groups=2,
                               algorithm=algorithm)  # fmt: skip

    mapped = jax.jit(jax.vmap(one))(jnp.asarray(x))
    batched = chanconv.conv2d(jnp.asarray(x), jnp.asarray(k), jnp.asarray(b), padding="same",
                              groups=2, algorithm=algorithm)  # fmt: skip
    assert mapped.shape == batched.shape == (2, 6, 7, 8)
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(batched), rtol=1e-5, atol=1e-5)


def test_the_section_functions_and_the_vjp_under_jit_grad_and_vmap():
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal((3, 5, 5)).astype("float32"), rng.standard_normal(
        (2, 3, 2, 2)).astype("float32")  # fmt: skip
    k1 = rng.standard_normal((2, 3, 1, 1)).astype("float32")
    X, K, K1 = jnp.asarray(x), jnp.asarray(k), jnp.asarray(k1)
    cases = [
        (chanconv.corr2d, (X[0], K[0, 0]), oracle.corr2d(x[0], k[0, 0])),
        (chanconv.corr2d_multi_in, (X, K[0]), oracle.corr2d_multi_in(x, k[0])),
        (chanconv.corr2d_multi_in_out, (X, K), oracle.corr2d_multi_in_out(x, k)),
        (chanconv.corr2d_multi_in_out_1x1, (X, K1), oracle.corr2d_multi_in_out(x, k1)),
    ]
    for fn, args, want in cases:
        np.testing.assert_allclose(np.asarray(jax.jit(fn)(*args)), want, rtol=1e-4, atol=1e-4)
        # grad of sum(fn(x, k)) in x is the oracle's backward with dy = 1
        g = jax.grad(lambda a, fn=fn, args=args: fn(a, *args[1:]).sum())(args[0])
        assert g.shape == args[0].shape and bool(jnp.all(jnp.isfinite(g)))
        stacked = jnp.stack([args[0], args[0] * 2])
        mapped = jax.vmap(lambda a, fn=fn, args=args: fn(a, *args[1:]))(stacked)
        np.testing.assert_allclose(np.asarray(mapped[1]), 2 * want, rtol=1e-4, atol=1e-4)
    dy = jnp.ones((1, 2, 4, 4), jnp.float32)
    dx, dk, _ = jax.jit(lambda a, b, c: chanconv.conv2d_vjp(a, b, c))(X[None], K, dy)
    want_dx, want_dk, _ = oracle.conv2d_vjp(x[None].astype(np.float64), k.astype(np.float64),
                                            np.ones((1, 2, 4, 4)))  # fmt: skip
    np.testing.assert_allclose(np.asarray(dx), want_dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(dk), want_dk, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_stays_half_precision(dtype):
    x, k, _ = _problem(1, seed=5)
    y = jax.jit(chanconv.conv2d)(jnp.asarray(x, dtype), jnp.asarray(k, dtype))
    assert y.dtype.name == dtype
    want, _ = _oracle(x, k, np.zeros(6, "float32"), (1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(np.asarray(y, np.float64), want, rtol=0.1, atol=0.3)


def test_float64_needs_x64_and_is_refused_without_it():
    assert not jax.config.read("jax_enable_x64")
    adapter = chanconv.get_adapter("jax")
    with pytest.raises(TypeError, match=r"float64 on the jax backend needs JAX's 64-bit mode"):
        adapter.asarray([[1.0]], "float64")
    with pytest.raises(TypeError, match=r"jax_enable_x64"):
        adapter.zeros((2, 2), "float64")
    jax.config.update("jax_enable_x64", True)
    try:
        x = jnp.asarray(np.arange(16.0).reshape(1, 1, 4, 4))
        assert x.dtype == jnp.float64
        y = chanconv.conv2d(x, jnp.ones((1, 1, 2, 2), jnp.float64))
        assert y.dtype == jnp.float64
        assert np.asarray(y)[0, 0, 0, 0] == 0 + 1 + 4 + 5
    finally:
        jax.config.update("jax_enable_x64", False)


def test_integer_arrays_are_refused_as_on_every_backend():
    with pytest.raises(TypeError, match=r"dtype int32.*floating"):
        chanconv.conv2d(jnp.ones((1, 1, 3, 3), jnp.int32), jnp.ones((1, 1, 2, 2), jnp.float32))


def test_conv2d_layer_is_a_flax_module_trained_by_optax():
    import flax.linen as nn
    import optax

    with chanconv.use_backend("jax"):
        layer = chanconv.Conv2D(1, 1, (1, 2), bias=False, seed=0)
    assert isinstance(layer, nn.Module)
    x = jnp.asarray([[[[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]] * 6]])
    y = jnp.asarray([[[[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6]])
    params = layer.init(jax.random.PRNGKey(0), x)
    assert set(params["params"]) == {"weight"}
    optimizer = optax.sgd(3e-2)
    state = optimizer.init(params)

    def loss(p):
        return ((layer.apply(p, x) - y) ** 2).sum()

    @jax.jit
    def step(p, s):
        grads = jax.grad(loss)(p)
        updates, s = optimizer.update(grads, s)
        return optax.apply_updates(p, updates), s

    before = float(loss(params))
    for _ in range(30):
        params, state = step(params, state)
    assert float(loss(params)) < before / 10
    np.testing.assert_allclose(np.asarray(params["params"]["weight"]).reshape(2), [1.0, -1.0],
                               atol=0.05)  # fmt: skip


def test_without_flax_conv2d_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "flax", None)  # makes "import flax.linen" fail
    monkeypatch.setitem(sys.modules, "flax.linen", None)
    with chanconv.use_backend("jax"):
        with pytest.raises(ImportError, match=r"pip install 'chanconv-jax\[flax\]'"):
            chanconv.Conv2D(2, 3, 3)


JAX_TAB = """
from chanconv import jax as d2l
import jax
from jax import numpy as jnp

def corr2d_multi_in(X, K):
    # Iterate through the 0th dimension (channel) of K first, then add them up
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

X = d2l.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
               [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
K = d2l.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])

out_multi_in = corr2d_multi_in(X, K)

def corr2d_multi_in_out(X, K):
    # Iterate through the 0th dimension of K, and each time, perform
    # cross-correlation operations with input X. All of the results are
    # stacked together
    return d2l.stack([corr2d_multi_in(X, k) for k in K], 0)

K = d2l.stack((K, K + 1, K + 2), 0)
out_shape = K.shape

out_multi_in_out = corr2d_multi_in_out(X, K)

def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = d2l.reshape(X, (c_i, h * w))
    K = d2l.reshape(K, (c_o, c_i))
    # Matrix multiplication in the fully connected layer
    Y = d2l.matmul(K, X)
    return d2l.reshape(Y, (c_o, h, w))

X = jax.random.normal(jax.random.PRNGKey(d2l.get_seed()), (3, 3, 3)) + 0 * 1
K = jax.random.normal(jax.random.PRNGKey(d2l.get_seed()), (2, 3, 1, 1)) + 0 * 1
Y1 = corr2d_multi_in_out_1x1(X, K)
Y2 = corr2d_multi_in_out(X, K)
assert float(d2l.reduce_sum(d2l.abs(Y1 - Y2))) < 1e-6
"""


def test_the_books_jax_tab_runs_with_only_the_import_changed():
    """The JAX tab's cells of d2l's channels section (``%%tab jax`` and ``%%tab all``), in
    order, with ``from d2l import jax as d2l`` replaced; the book's printed values."""
    scope: dict = {}
    exec(compile(JAX_TAB, "channels_jax_tab", "exec"), scope)
    assert isinstance(scope["out_multi_in"], jax.Array)
    assert np.asarray(scope["out_multi_in"]).tolist() == [[56.0, 72.0], [104.0, 120.0]]
    assert scope["out_shape"] == (3, 2, 2, 2)
    assert np.asarray(scope["out_multi_in_out"]).tolist() == [
        [[56.0, 72.0], [104.0, 120.0]],
        [[76.0, 100.0], [148.0, 172.0]],
        [[96.0, 128.0], [192.0, 224.0]],
    ]


def test_the_jax_namespace_has_d2ls_jax_aliases():
    from chanconv import jax as d2l

    assert d2l.tensor is jnp.array and d2l.concat is jnp.concatenate
    assert d2l.sigmoid is jax.nn.sigmoid and d2l.to is jax.device_put
    x = jnp.arange(6.0).reshape(2, 3)
    assert d2l.reduce_sum(x, 0).tolist() == [3.0, 5.0, 7.0]
    assert d2l.transpose(x).shape == (3, 2)
    assert d2l.numpy(x).tolist() == np.arange(6.0).reshape(2, 3).tolist()
    assert d2l.size(x) == 6


def test_chanconv_backends_lists_jax_as_third_party_from_its_distribution():
    proc = subprocess.run([sys.executable, "-m", "chanconv", "backends"], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("jax "))
    assert "chanconv_jax:JaxBackend" in row and "chanconv-jax (third-party)" in row
    assert f" {jax.__version__} " in row and "cpu:0" in row


def test_the_adapter_declares_its_extensions_and_only_those():
    from chanconv import protocol

    adapter = chanconv.get_adapter("jax")
    for extension in (protocol.ArrayBackend, protocol.NativeConv2d, protocol.NativeLayers,
                      protocol.D2lAliases, protocol.DeviceList, protocol.Compiler,
                      protocol.ConformanceHelpers):  # fmt: skip
        assert protocol.implements(adapter, extension), extension.__name__
    # no chanconv extra installs it, and its 1x1 layers go to the matmul
    assert not protocol.implements(adapter, protocol.PipExtra)
    assert not protocol.implements(adapter, protocol.PointwiseHint)
