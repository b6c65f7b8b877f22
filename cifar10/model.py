"""The CIFAR-10 network of the TensorFlow tutorial, in one class, Cifar10Model: its
__init__ declares each layer's variables in network order, and forward() wires them as
the original's inference() did:

conv1 -> ReLU -> max-pool -> LRN -> conv2 -> ReLU -> LRN -> max-pool -> local3 -> ReLU
-> local4 -> ReLU -> softmax_linear (logits). Variables keep the tutorial's names
(conv1/weights, local3/biases, ...), which are also their paths in checkpoints.

Variables are float32; the forward pass can run in bfloat16 or float16 (mixed
precision), with the logits returned in float32.
"""
import math

import numpy as np
import tensorflow as tf

from cifar10.shapes import CROPPED_SIZE, DEPTH, NUM_CLASSES

# Local response normalization, as the tutorial: depth radius 4, bias 1, alpha 0.001/9,
# beta 0.75. LRN_BETA is not a setting: local_response_normalization below computes
# d ** -0.75 as rsqrt(d) * sqrt(rsqrt(d)), so another beta needs another formula there
# (tests/test_model.py checks it against TensorFlow's LRN with these four constants).
LRN_RADIUS = 4
LRN_BIAS = 1.0
LRN_ALPHA = 0.001 / 9.0
LRN_BETA = 0.75
POOL_SIZE = 3
POOL_STRIDE = 2
# Height and width after the two 'SAME' max-pools, each ceil(size / stride): 24 -> 12 -> 6.
POOLED_SIZE = math.ceil(math.ceil(CROPPED_SIZE / POOL_STRIDE) / POOL_STRIDE)

FC_WEIGHT_DECAY = 0.004  # the tutorial's L2 weight decay of local3 and local4


@tf.custom_gradient
def local_response_normalization(x):
    """LRN over the channels of x [B, H, W, C] in x's own dtype (bfloat16 too, which TF's
    LRN kernel lacks), equal to tf.nn.local_response_normalization(x, 4, 1.0, 0.001/9,
    0.75) up to rounding, and about three times faster with its gradient on a CPU:

    y = x * d ** -0.75 with d = 1 + alpha * S(x^2), where S, the sum over the window of
    2 x 4 + 1 channels, is one matrix product with a band matrix, and d ** -0.75 is
    rsqrt(d) * sqrt(rsqrt(d)). The gradient is written out, since S is symmetric:
    dx = g * d ** -0.75 - 2 * alpha * beta * x * S(g * y / d).
    """
    channels = x.shape[-1]
    offsets = np.arange(channels)
    band = tf.constant(np.abs(offsets[:, None] - offsets[None, :]) <= LRN_RADIUS, dtype=x.dtype)

    def window_sum(t):
        return tf.reshape(tf.reshape(t, [-1, channels]) @ band, tf.shape(t))

    d = LRN_BIAS + LRN_ALPHA * window_sum(tf.square(x))
    inverse_root = tf.math.rsqrt(d)
    scale = inverse_root * tf.sqrt(inverse_root)  # d ** -LRN_BETA
    y = x * scale

    def gradient(g):
        return g * scale - (2 * LRN_ALPHA * LRN_BETA) * x * window_sum(g * y / d)
    return y, gradient


class LayerVariables(tf.Module):
    """The float32 variables of one layer, '<name>/weights' and '<name>/biases', and its
    L2 weight decay coefficient: a container, not a Keras layer (Cifar10Model.forward
    computes the layers).

    shape: the weights' shape, the biases' being its last dimension; stddev: the
    weights' truncated normal initializer's; bias: the biases' initial value;
    weight_decay: 0 for none; seed: the initializer's, a pair of ints, or None for
    random weights.
    """

    def __init__(self, name, shape, stddev, bias, weight_decay, seed=None):
        super().__init__(name=name)
        self.weight_decay = weight_decay
        if seed is None:
            initial_weights = tf.random.truncated_normal(shape, stddev=stddev)
        else:
            initial_weights = tf.random.stateless_truncated_normal(shape, seed, stddev=stddev)
        with tf.name_scope(name):
            self.weights = tf.Variable(initial_weights, name="weights")
            self.biases = tf.Variable(tf.fill([shape[-1]], bias), name="biases")

    @property
    def outputs(self):
        """The layer's output channels or units."""
        return self.weights.shape[-1]


class Cifar10Model(tf.Module):
    """The tutorial's network: float32 images [B, 24, 24, 3] -> float32 logits [B, 10].

    1,068,298 float32 parameters. compute_dtype (float32, bfloat16 or float16) is the
    precision of the forward pass; fc_weight_decay the L2 coefficient of local3 and
    local4, conv_weight_decay that of conv1 and conv2. seed (an int) makes the initial
    weights the same for every model built with it; None, random. Create it inside a
    tf.distribute strategy's scope to mirror its variables.
    """

    def __init__(self, compute_dtype=tf.float32, fc_weight_decay=FC_WEIGHT_DECAY, conv_weight_decay=0.0, seed=None):
        super().__init__(name="cifar10")
        self.compute_dtype = tf.as_dtype(compute_dtype)

        def layer_seed(index):  # a stateless initializer's seed pair, its own for each layer
            return None if seed is None else (seed, index)
        # The tutorial's layers and initializers, in network order; each takes the previous
        # one's outputs. The softmax layer's weights are never decayed.
        self.conv1 = LayerVariables("conv1", [5, 5, DEPTH, 64], stddev=5e-2, bias=0.0,
                                    weight_decay=conv_weight_decay, seed=layer_seed(0))
        self.conv2 = LayerVariables("conv2", [5, 5, self.conv1.outputs, 64], stddev=5e-2, bias=0.1,
                                    weight_decay=conv_weight_decay, seed=layer_seed(1))
        flat_size = POOLED_SIZE * POOLED_SIZE * self.conv2.outputs  # 6 x 6 x 64 = 2,304
        self.local3 = LayerVariables("local3", [flat_size, 384], stddev=0.04, bias=0.1,
                                     weight_decay=fc_weight_decay, seed=layer_seed(2))
        self.local4 = LayerVariables("local4", [self.local3.outputs, 192], stddev=0.04, bias=0.1,
                                     weight_decay=fc_weight_decay, seed=layer_seed(3))
        self.softmax_linear = LayerVariables("softmax_linear", [self.local4.outputs, NUM_CLASSES],
                                             stddev=1 / 192.0, bias=0.0, weight_decay=0.0, seed=layer_seed(4))

    @property
    def layers(self):
        """The LayerVariables in network order."""
        return [self.conv1, self.conv2, self.local3, self.local4, self.softmax_linear]

    def forward(self, images):
        """Logits float32 [B, 10] and a dict of each layer's output after its ReLU, in the
        compute dtype (for summaries; unused outputs cost nothing in a compiled step)."""
        dtype = self.compute_dtype

        def dense(layer, x):
            return tf.nn.bias_add(x @ tf.cast(layer.weights, dtype), tf.cast(layer.biases, dtype))

        def conv(layer, x):
            return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, tf.cast(layer.weights, dtype), 1, "SAME"),
                                             tf.cast(layer.biases, dtype)))

        def pool(x):
            return tf.nn.max_pool2d(x, POOL_SIZE, POOL_STRIDE, "SAME")

        def lrn(x):
            if dtype != tf.float16:
                return local_response_normalization(x)
            # A window's sum of squares can exceed float16's range (65,504).
            return tf.cast(local_response_normalization(tf.cast(x, tf.float32)), dtype)

        activations = {}
        x = activations["conv1"] = conv(self.conv1, tf.cast(images, dtype))
        x = lrn(pool(x))
        x = activations["conv2"] = conv(self.conv2, x)
        x = pool(lrn(x))
        x = tf.reshape(x, [-1, self.local3.weights.shape[0]])  # flattened: [B, 2304]
        x = activations["local3"] = tf.nn.relu(dense(self.local3, x))
        x = activations["local4"] = tf.nn.relu(dense(self.local4, x))
        logits = activations["softmax_linear"] = dense(self.softmax_linear, x)
        return tf.cast(logits, tf.float32), activations

    def __call__(self, images):
        """Logits float32 [B, 10] for float32 images [B, 24, 24, 3]."""
        return self.forward(images)[0]

    def weight_decay_loss(self, excluding=()):
        """The L2 weight decay terms, a float32 scalar: the sum over the layers not named in
        excluding of decay * sum(weights^2) / 2."""
        return tf.add_n([layer.weight_decay * tf.nn.l2_loss(layer.weights) for layer in self.layers
                         if layer.weight_decay and layer.name not in excluding] or [tf.constant(0.0)])
