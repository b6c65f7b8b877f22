"""The CIFAR-10 network of the TensorFlow tutorial, and its loss.

conv1 -> ReLU -> max-pool -> LRN -> conv2 -> ReLU -> LRN -> max-pool -> local3 -> ReLU
-> local4 -> ReLU -> softmax_linear (logits). Variables keep the tutorial's names
(conv1/weights, local3/biases, ...), which are also their paths in checkpoints.
"""
import tensorflow as tf

from cifar10.data import CROPPED_SIZE, DEPTH, NUM_CLASSES

# Local response normalization, as the tutorial: depth radius 4, bias 1, alpha 0.001/9.
LRN_RADIUS = 4
LRN_BIAS = 1.0
LRN_ALPHA = 0.001 / 9.0
LRN_BETA = 0.75
POOL_SIZE = 3
POOL_STRIDE = 2
FLAT_SIZE = (CROPPED_SIZE // POOL_STRIDE // POOL_STRIDE) ** 2 * 64  # 6 x 6 x 64 = 2,304

# (name, weight shape, initial weight stddev, L2 weight decay, initial bias)
LAYERS = (
    ("conv1", (5, 5, DEPTH, 64), 5e-2, 0.0, 0.0),
    ("conv2", (5, 5, 64, 64), 5e-2, 0.0, 0.1),
    ("local3", (FLAT_SIZE, 384), 0.04, 0.004, 0.1),
    ("local4", (384, 192), 0.04, 0.004, 0.1),
    ("softmax_linear", (192, NUM_CLASSES), 1 / 192.0, 0.0, 0.0),
)


class Layer(tf.Module):
    """Weights and biases of one layer, named '<layer>/weights' and '<layer>/biases'."""

    def __init__(self, name, shape, stddev, weight_decay, bias):
        super().__init__(name=name)
        self.weight_decay = weight_decay
        with tf.name_scope(name):
            self.weights = tf.Variable(tf.random.truncated_normal(shape, stddev=stddev), name="weights")
            self.biases = tf.Variable(tf.fill([shape[-1]], bias), name="biases")


class Cifar10Model(tf.Module):
    """The tutorial's network: float32 images [B, 24, 24, 3] -> logits [B, 10].

    1,068,298 parameters. Create it inside a tf.distribute strategy's scope to mirror
    its variables across replicas.
    """

    def __init__(self):
        super().__init__(name="cifar10")
        for spec in LAYERS:
            setattr(self, spec[0], Layer(*spec))

    @property
    def layers(self):
        """The layers in order, as Layer modules."""
        return [getattr(self, spec[0]) for spec in LAYERS]

    def forward(self, images):
        """Logits float32 [B, 10] and a dict of each layer's output after its ReLU (for
        summaries; unused outputs cost nothing in a compiled step)."""
        def conv(layer, x):
            return tf.nn.relu(tf.nn.conv2d(x, layer.weights, 1, "SAME") + layer.biases)

        def pool(x):
            return tf.nn.max_pool2d(x, POOL_SIZE, POOL_STRIDE, "SAME")

        def lrn(x):
            return tf.nn.local_response_normalization(x, LRN_RADIUS, LRN_BIAS, LRN_ALPHA, LRN_BETA)

        activations = {}
        x = activations["conv1"] = conv(self.conv1, images)
        x = lrn(pool(x))
        x = activations["conv2"] = conv(self.conv2, x)
        x = pool(lrn(x))
        x = tf.reshape(x, [-1, FLAT_SIZE])
        x = activations["local3"] = tf.nn.relu(x @ self.local3.weights + self.local3.biases)
        x = activations["local4"] = tf.nn.relu(x @ self.local4.weights + self.local4.biases)
        logits = x @ self.softmax_linear.weights + self.softmax_linear.biases
        activations["softmax_linear"] = logits
        return logits, activations

    def __call__(self, images):
        """Logits float32 [B, 10] for float32 images [B, 24, 24, 3]."""
        return self.forward(images)[0]

    def weight_decay_loss(self):
        """The L2 weight decay terms: sum over layers of decay * sum(weights^2) / 2."""
        return tf.add_n([layer.weight_decay * tf.nn.l2_loss(layer.weights)
                         for layer in self.layers if layer.weight_decay])


def inference(images, model):
    """The original's inference(): logits float32 [B, 10] of model for images [B, 24, 24, 3]."""
    return model(images)


def loss(logits, labels, model):
    """The original's loss(): mean softmax cross-entropy of logits [B, 10] against int
    labels [B], plus model's L2 weight decay. Returns a float32 scalar."""
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(cross_entropy) + model.weight_decay_loss()
