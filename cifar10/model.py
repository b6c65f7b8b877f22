"""The CIFAR-10 network of the TensorFlow tutorial, and its loss.

conv1 -> ReLU -> max-pool -> LRN -> conv2 -> ReLU -> LRN -> max-pool -> local3 -> ReLU
-> local4 -> ReLU -> softmax_linear (logits). Variables keep the tutorial's names
(conv1/weights, local3/biases, ...), which are also their paths in checkpoints.

Variables are float32; the forward pass can run in bfloat16 or float16 (mixed
precision), with the logits returned in float32.
"""
import numpy as np
import tensorflow as tf

from cifar10.data import CROPPED_SIZE, DEPTH, NUM_CLASSES

# Local response normalization, as the tutorial: depth radius 4, bias 1, alpha 0.001/9.
LRN_RADIUS = 4
LRN_BIAS = 1.0
LRN_ALPHA = 0.001 / 9.0
LRN_BETA = 0.75  # local_response_normalization's rsqrt(d) * sqrt(rsqrt(d)) is d ** -0.75
POOL_SIZE = 3
POOL_STRIDE = 2
FLAT_SIZE = (CROPPED_SIZE // POOL_STRIDE // POOL_STRIDE) ** 2 * 64  # 6 x 6 x 64 = 2,304

FC_WEIGHT_DECAY = 0.004  # the tutorial's L2 weight decay of local3 and local4

# (name, weight shape, initial weight stddev, weight decay group, initial bias); the
# tutorial decays only the "fc" group; the softmax layer is in none.
LAYERS = (
    ("conv1", (5, 5, DEPTH, 64), 5e-2, "conv", 0.0),
    ("conv2", (5, 5, 64, 64), 5e-2, "conv", 0.1),
    ("local3", (FLAT_SIZE, 384), 0.04, "fc", 0.1),
    ("local4", (384, 192), 0.04, "fc", 0.1),
    ("softmax_linear", (192, NUM_CLASSES), 1 / 192.0, None, 0.0),
)


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
    scale = inverse_root * tf.sqrt(inverse_root)  # d ** -0.75
    y = x * scale

    def gradient(g):
        return g * scale - (2 * LRN_ALPHA * LRN_BETA) * x * window_sum(g * y / d)
    return y, gradient


class Layer(tf.Module):
    """Weights and biases of one layer, named '<layer>/weights' and '<layer>/biases'."""

    def __init__(self, name, shape, stddev, weight_decay, bias):
        super().__init__(name=name)
        self.weight_decay = weight_decay  # L2 coefficient, 0 for none
        with tf.name_scope(name):
            self.weights = tf.Variable(tf.random.truncated_normal(shape, stddev=stddev), name="weights")
            self.biases = tf.Variable(tf.fill([shape[-1]], bias), name="biases")


class Cifar10Model(tf.Module):
    """The tutorial's network: float32 images [B, 24, 24, 3] -> float32 logits [B, 10].

    1,068,298 float32 parameters. compute_dtype (float32, bfloat16 or float16) is the
    precision of the forward pass; fc_weight_decay the L2 coefficient of local3 and
    local4, conv_weight_decay that of conv1 and conv2. Create it inside a tf.distribute
    strategy's scope to mirror its variables.
    """

    def __init__(self, compute_dtype=tf.float32, fc_weight_decay=FC_WEIGHT_DECAY, conv_weight_decay=0.0):
        super().__init__(name="cifar10")
        self.compute_dtype = tf.as_dtype(compute_dtype)
        decay = {"conv": conv_weight_decay, "fc": fc_weight_decay, None: 0.0}
        for name, shape, stddev, group, bias in LAYERS:
            setattr(self, name, Layer(name, shape, stddev, decay[group], bias))

    @property
    def layers(self):
        """The layers in order, as Layer modules."""
        return [getattr(self, spec[0]) for spec in LAYERS]

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
        x = tf.reshape(x, [-1, FLAT_SIZE])
        x = activations["local3"] = tf.nn.relu(dense(self.local3, x))
        x = activations["local4"] = tf.nn.relu(dense(self.local4, x))
        logits = activations["softmax_linear"] = dense(self.softmax_linear, x)
        return tf.cast(logits, tf.float32), activations

    def __call__(self, images):
        """Logits float32 [B, 10] for float32 images [B, 24, 24, 3]."""
        return self.forward(images)[0]

    def weight_decay_loss(self):
        """The L2 weight decay terms: sum over layers of decay * sum(weights^2) / 2."""
        return tf.add_n([layer.weight_decay * tf.nn.l2_loss(layer.weights)
                         for layer in self.layers if layer.weight_decay] or [tf.constant(0.0)])


def inference(images, model):
    """The original's inference(): logits float32 [B, 10] of model for images [B, 24, 24, 3]."""
    return model(images)


def loss(logits, labels, model):
    """The original's loss(): mean softmax cross-entropy of logits [B, 10] against int
    labels [B], plus model's L2 weight decay. Returns a float32 scalar."""
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(cross_entropy) + model.weight_decay_loss()
