"""The network: shapes, the tutorial's variable names, parameter count and the loss."""
import math

import numpy as np
import tensorflow as tf

from cifar10.model import Cifar10Model, inference, loss

TUTORIAL_VARIABLES = {
    "conv1/weights:0": (5, 5, 3, 64), "conv1/biases:0": (64,),
    "conv2/weights:0": (5, 5, 64, 64), "conv2/biases:0": (64,),
    "local3/weights:0": (2304, 384), "local3/biases:0": (384,),
    "local4/weights:0": (384, 192), "local4/biases:0": (192,),
    "softmax_linear/weights:0": (192, 10), "softmax_linear/biases:0": (10,),
}


def test_logits_shape():
    model = Cifar10Model()
    logits = inference(tf.random.normal([7, 24, 24, 3]), model)
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


def test_loss_is_cross_entropy_plus_weight_decay():
    model = Cifar10Model()
    logits = tf.zeros([4, 10])
    labels = tf.constant([0, 1, 2, 3])
    decay = 0.004 * (np.sum(model.local3.weights.numpy() ** 2) + np.sum(model.local4.weights.numpy() ** 2)) / 2
    np.testing.assert_allclose(float(loss(logits, labels, model)), math.log(10) + decay, rtol=1e-5)
