"""Conv2D where real models put it: a Keras model built on symbolic inputs, trained with
``fit``, saved and exported; a hybridized, trained and exported Gluon model; a compiled,
exported and traced torch model; a third-party framework's own (Flax: trained under
``jax.jit``, saved by ``flax.serialization``, exported by ``jax.export``) through its
conformance helpers; and on every backend a real class with a stable import path that
pickles. Each result equals the eager layer and the float64 oracle."""

from __future__ import annotations

import importlib
import pickle

import numpy as np
import pytest

import chanconv
from chanconv.protocol import ModelHelpers

from . import frameworks, oracle

#: Where each backend's layer class lives (a stable import path, not a factory's local).
LAYER_CLASSES = {
    "numpy": "chanconv.layers:Conv2DLayer",
    "torch": "chanconv.backends.torch:Conv2D",
    "tensorflow": "chanconv.backends.tensorflow:Conv2D",
    "mxnet": "chanconv.backends.mxnet:Conv2D",
}


def _model_helpers(backend_name):
    """A third-party backend's layer class and model machinery (its conformance helpers'
    optional ModelHelpers members), or None."""
    helpers = frameworks.plugin_helpers(backend_name)
    return helpers if isinstance(helpers, ModelHelpers) else None


def _x(shape=(4, 3, 8, 8), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _weights(backend_name, layer):
    get = {
        "tensorflow": lambda: (layer.kernel.numpy(), layer.bias.numpy()),
        "mxnet": lambda: (layer.weight.data().asnumpy(), layer.bias.data().asnumpy()),
        "torch": lambda: (layer.weight.detach().numpy(), layer.bias.detach().numpy()),
    }
    models = _model_helpers(backend_name)
    if models is not None:
        get[backend_name] = lambda: (frameworks.layer_weight(backend_name, layer),
                                     models.layer_bias(layer))  # fmt: skip
    plain = chanconv.get_adapter(backend_name)
    return get.get(
        backend_name, lambda: (plain.to_numpy(layer.weight), plain.to_numpy(layer.bias))
    )()


def _oracle(backend_name, layer, x, pads=(1, 1, 1, 1)):
    w, b = _weights(backend_name, layer)
    return oracle.conv2d(x, w, b, pads=pads)


def test_layer_class_has_a_stable_import_path_and_pickles(backend_name, adapter):
    models = _model_helpers(backend_name)
    if models is not None:
        path = models.layer_class_path()
    else:  # no module system: ours
        path = LAYER_CLASSES.get(backend_name, LAYER_CLASSES["numpy"])
    module_name, _, cls_name = path.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    layer = chanconv.Conv2D(3, 4, 3, padding=1, seed=0)
    assert isinstance(layer, cls) and type(layer) is cls
    assert f"{cls.__module__}:{cls.__qualname__}" == path
    x = _x()
    want = adapter.to_numpy(frameworks.call_layer(backend_name, layer, adapter.asarray(x)))
    np.testing.assert_allclose(want, _oracle(backend_name, layer, x), rtol=1e-4, atol=1e-4)
    if backend_name == "tensorflow":  # Keras layers serialize by config, not pickle
        import keras

        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(clone) is cls and clone.get_config() == layer.get_config()
        return
    copy = pickle.loads(pickle.dumps(layer))
    assert type(copy) is cls
    got = frameworks.call_layer(backend_name, copy, adapter.asarray(x))
    np.testing.assert_array_equal(adapter.to_numpy(got), want)


def _keras_model(keras, functional):
    # No seed: the layer follows Keras's global one.
    layer = importlib.import_module("chanconv.backends.tensorflow").Conv2D(3, 4, 3, padding=1)
    if functional:
        inputs = keras.Input((3, 8, 8))
        outputs = keras.layers.Dense(2)(keras.layers.Flatten()(layer(inputs)))
        return keras.Model(inputs, outputs), layer
    return keras.Sequential([keras.Input((3, 8, 8)), layer, keras.layers.Flatten(),
                             keras.layers.Dense(2)]), layer  # fmt: skip


@pytest.mark.parametrize("functional", [True, False], ids=["functional", "sequential"])
def test_model_trains_saves_and_exports(backend_name, adapter, tmp_path, functional):
    """The backend's own model machinery end to end: build, compile/hybridize, train one
    step, save and load (or export and import), with equal predictions."""
    x = _x()
    if backend_name == "tensorflow":
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(3)
        model, layer = _keras_model(keras, functional)
        assert model.layers[-3 if functional else 0].compute_output_shape((None, 3, 8, 8)) == (
            None, 4, 8, 8)  # fmt: skip
        assert tuple(layer.output.shape) == (None, 4, 8, 8)  # what model.summary() shows
        keras.utils.set_random_seed(3)
        again, _ = _keras_model(keras, functional)
        for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)  # reproducible under set_random_seed
        before = layer.kernel.numpy()
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, np.ones((4, 2), "float32"), batch_size=2, epochs=1, verbose=0)
        assert not np.array_equal(before, layer.kernel.numpy())  # fit trained the kernel
        predicted = model.predict(x, verbose=0)
        features = keras.Model(model.inputs, layer.output) if functional else None
        if features is not None:
            want = _oracle(backend_name, layer, x)
            np.testing.assert_allclose(features.predict(x, verbose=0), want, rtol=1e-4, atol=1e-4)
        model.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        np.testing.assert_allclose(loaded.predict(x, verbose=0), predicted, rtol=1e-6, atol=1e-6)
        model.export(str(tmp_path / "exported"), verbose=False)
        restored = tf.saved_model.load(str(tmp_path / "exported"))  # held: it owns the weights
        served = restored.serve(tf.constant(x))
        np.testing.assert_allclose(served.numpy(), predicted, rtol=1e-5, atol=1e-5)
    elif backend_name == "mxnet":
        import mxnet as mx
        from mxnet import autograd, gluon

        layer = chanconv.Conv2D(3, 4, 3, padding=1, seed=0)
        net = gluon.nn.HybridSequential()
        net.add(layer)
        if not functional:  # a second block after it
            net.add(gluon.nn.Dense(2))
            net[1].initialize()
        xs = mx.nd.array(x)
        imperative = net(xs).asnumpy()
        if functional:
            np.testing.assert_allclose(imperative, _oracle(backend_name, layer, x), rtol=1e-4,
                                       atol=1e-4)  # fmt: skip
        net.hybridize()
        np.testing.assert_allclose(net(xs).asnumpy(), imperative, rtol=1e-5, atol=1e-5)
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01})
        before = layer.weight.data().asnumpy()
        with autograd.record():
            loss = (net(xs) ** 2).sum()
        loss.backward()
        trainer.step(4)
        assert not np.array_equal(before, layer.weight.data().asnumpy())
        trained = net(xs).asnumpy()
        if functional:
            np.testing.assert_allclose(trained, _oracle(backend_name, layer, x), rtol=1e-4,
                                       atol=1e-4)  # fmt: skip
        net.export(str(tmp_path / "m"))
        block = gluon.SymbolBlock.imports(str(tmp_path / "m-symbol.json"), ["data"],
                                          str(tmp_path / "m-0000.params"))  # fmt: skip
        np.testing.assert_allclose(block(xs).asnumpy(), trained, rtol=1e-5, atol=1e-5)
        # The mx.np style in the same hybridized block.
        y_np = layer(xs.as_np_ndarray())
        assert isinstance(y_np, mx.np.ndarray)
    elif backend_name == "torch":
        import torch

        layer = chanconv.Conv2D(3, 4, 3, padding=1, seed=0)
        model = torch.nn.Sequential(layer, torch.nn.Flatten(), torch.nn.Linear(256, 2))
        xt = torch.tensor(x)
        eager = model(xt).detach()
        np.testing.assert_allclose(layer(xt).detach().numpy(), _oracle(backend_name, layer, x),
                                   rtol=1e-4, atol=1e-4)  # fmt: skip
        torch._dynamo.reset()
        chanconv.operations._plans.clear()
        if functional:
            compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
            torch.testing.assert_close(compiled(xt).detach(), eager, rtol=1e-5, atol=1e-5)
            exported = torch.export.export(model, (xt,))
            torch.testing.assert_close(exported.module()(xt), eager, rtol=1e-5, atol=1e-5)
        else:
            traced = torch.jit.trace(model, (xt,))
            torch.testing.assert_close(traced(xt).detach(), eager, rtol=1e-5, atol=1e-5)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
            before = layer.weight.detach().clone()
            torch.compile(model, fullgraph=True, backend="aot_eager")(xt).square().sum().backward()
            optimizer.step()
            assert not torch.equal(before, layer.weight.detach())
    elif _model_helpers(backend_name) is not None:
        # A third-party framework's machinery, run by its helpers; the assertions are here.
        layer = chanconv.Conv2D(3, 4, 3, padding=1, seed=0)
        run = _model_helpers(backend_name).model_round_trip(layer, x, tmp_path, functional)
        assert not np.array_equal(run.weight_before, run.weight)  # training moved the kernel
        assert not np.allclose(run.trained, run.eager)
        want = oracle.conv2d(x, run.weight, run.bias, pads=(1, 1, 1, 1))
        np.testing.assert_allclose(run.features, want, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(run.reloaded, run.trained, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(run.exported, run.trained, rtol=1e-5, atol=1e-5)
    else:
        # NumPy has no model machinery and no compiler (docs/compiled.md): its layer is the
        # plain Conv2DLayer, trained by explicit backward and SGD step, checked here.
        layer = chanconv.Conv2D(3, 4, 3, padding=1, seed=0)
        y = layer(adapter.asarray(x))
        want = _oracle(backend_name, layer, x)
        np.testing.assert_allclose(adapter.to_numpy(y), want, rtol=1e-4, atol=1e-4)
        layer.backward(adapter.asarray(np.ones(want.shape, "float32")))
        before = adapter.to_numpy(layer.weight)
        layer.sgd_step(0.01)
        assert not np.array_equal(before, adapter.to_numpy(layer.weight))
