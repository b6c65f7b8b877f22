"""The network: shapes, the tutorial's variable names, parameter count, weight decay and LRN."""
import numpy as np
import pytest
import tensorflow as tf

from cifar10 import model as tutorial
from cifar10.model import Cifar10Model, local_response_normalization

TUTORIAL_VARIABLES = {
    "conv1/weights:0": (5, 5, 3, 64), "conv1/biases:0": (64,),
    "conv2/weights:0": (5, 5, 64, 64), "conv2/biases:0": (64,),
    "local3/weights:0": (2304, 384), "local3/biases:0": (384,),
    "local4/weights:0": (384, 192), "local4/biases:0": (192,),
    "softmax_linear/weights:0": (192, 10), "softmax_linear/biases:0": (10,),
}


def test_logits_shape():
    model = Cifar10Model()
    logits = model(tf.random.normal([7, 24, 24, 3]))
    assert logits.shape == (7, 10) and logits.dtype == tf.float32


def test_variables_keep_the_tutorial_names_and_shapes():
    model = Cifar10Model()
    assert {v.name: tuple(v.shape) for v in model.trainable_variables} == TUTORIAL_VARIABLES


def test_parameter_count():
    model = Cifar10Model()
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == 1_068_298


def test_initial_biases_and_weight_scale():
    model = Cifar10Model()
    assert np.all(model.conv2.biases.numpy() == np.float32(0.1)) and np.all(model.conv1.biases.numpy() == 0)
    # Truncated normal with stddev 0.04: std about 0.88 x 0.04, nothing beyond 2 stddev.
    weights = model.local3.weights.numpy()
    assert abs(weights.std() - 0.88 * 0.04) < 0.002 and np.abs(weights).max() <= 0.08


def test_the_tutorials_weight_decay_is_the_l2_of_local3_and_local4():
    model = Cifar10Model()
    decay = 0.004 * (np.sum(model.local3.weights.numpy() ** 2) + np.sum(model.local4.weights.numpy() ** 2)) / 2
    np.testing.assert_allclose(float(model.weight_decay_loss()), decay, rtol=1e-5)


def test_fast_lrn_agrees_with_tensorflow_lrn_in_float32_forward_and_backward():
    assert (tutorial.LRN_RADIUS, tutorial.LRN_BIAS, tutorial.LRN_ALPHA, tutorial.LRN_BETA) == (4, 1.0, 0.001 / 9, 0.75)
    x = tf.random.stateless_normal([4, 12, 12, 64], seed=[1, 2]) * 4
    weights = tf.random.stateless_normal(x.shape, seed=[3, 4])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = local_response_normalization(x)
        # With the model's constants: the fast formula holds only for the LRN_BETA it declares.
        reference = tf.nn.local_response_normalization(x, tutorial.LRN_RADIUS, bias=tutorial.LRN_BIAS,
                                                       alpha=tutorial.LRN_ALPHA, beta=tutorial.LRN_BETA)
        ours_sum, reference_sum = tf.reduce_sum(ours * weights), tf.reduce_sum(reference * weights)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours_sum, x).numpy(), tape.gradient(reference_sum, x).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_fast_lrn_runs_in_bfloat16():
    x = tf.random.stateless_normal([2, 6, 6, 64], seed=[5, 6]) * 4
    out = local_response_normalization(tf.cast(x, tf.bfloat16))
    assert out.dtype == tf.bfloat16
    reference = tf.nn.local_response_normalization(x, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), reference.numpy(), rtol=2e-2, atol=2e-2)


def test_mixed_precision_keeps_float32_variables_and_logits():
    model = Cifar10Model(compute_dtype=tf.bfloat16)
    reference = Cifar10Model()
    for ours, theirs in zip(model.trainable_variables, reference.trainable_variables):
        ours.assign(theirs)
    images = tf.random.stateless_normal([8, 24, 24, 3], seed=[7, 8])
    logits = model(images)
    assert logits.dtype == tf.float32
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    np.testing.assert_allclose(logits.numpy(), reference(images).numpy(), atol=0.05)


def test_the_weight_decay_of_the_fully_connected_and_conv_layers_is_configurable():
    model = Cifar10Model(fc_weight_decay=0.001)
    assert [layer.weight_decay for layer in model.layers] == [0.0, 0.0, 0.001, 0.001, 0.0]
    model = Cifar10Model(fc_weight_decay=0.001, conv_weight_decay=0.002)
    assert [layer.weight_decay for layer in model.layers] == [0.002, 0.002, 0.001, 0.001, 0.0]
    expected = sum(decay * np.sum(layer.weights.numpy() ** 2) / 2
                   for decay, layer in zip([0.002, 0.002, 0.001, 0.001], model.layers))
    assert float(model.weight_decay_loss()) == pytest.approx(expected, rel=1e-5)
    assert float(Cifar10Model(fc_weight_decay=0.0).weight_decay_loss()) == 0.0


def test_float16_compute_keeps_lrn_within_range():
    model = Cifar10Model(compute_dtype=tf.float16)
    large = tf.random.stateless_normal([2, 24, 24, 3], seed=[9, 9]) * 300  # activations far past 256
    logits = model(large)
    assert logits.dtype == tf.float32 and np.all(np.isfinite(logits.numpy()))

