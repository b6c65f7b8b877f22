"""The tutorial's network as a plain Keras model, trained with model.fit: the baseline
that benchmark.py times side by side with this project's trainer.

Same layers, initializers, weight decay, loss and optimizer (SGD at 0.1) as
cifar10/model.py, with TensorFlow's own LRN kernel; XLA off, which is the faster
setting for this network on a CPU. plain_dataset() is the input pipeline such a user
writes, the tutorial's augmentation one example at a time.
"""
import keras
import tensorflow as tf

from cifar10 import data
from cifar10 import model as tutorial

SHUFFLE_FRACTION = 0.4  # of an epoch, as the tutorial's min_after_dequeue


def lrn(x):
    return tf.nn.local_response_normalization(x, tutorial.LRN_RADIUS, tutorial.LRN_BIAS, tutorial.LRN_ALPHA,
                                              tutorial.LRN_BETA)


def build_model():
    """A compiled keras.Model: float32 images [B, 24, 24, 3] -> logits [B, 10]."""
    def init(stddev):
        return keras.initializers.TruncatedNormal(stddev=stddev)

    # Keras's L2(l) adds l * sum(w^2); the tutorial adds decay * sum(w^2) / 2.
    decay = keras.regularizers.L2(tutorial.FC_WEIGHT_DECAY / 2)
    layers = [
        keras.Input([24, 24, 3]),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu", kernel_initializer=init(5e-2)),
        keras.layers.MaxPooling2D(3, 2, padding="same"),
        keras.layers.Lambda(lrn),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu", kernel_initializer=init(5e-2),
                            bias_initializer=keras.initializers.Constant(0.1)),
        keras.layers.Lambda(lrn),
        keras.layers.MaxPooling2D(3, 2, padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(384, activation="relu", kernel_initializer=init(0.04), kernel_regularizer=decay,
                           bias_initializer=keras.initializers.Constant(0.1)),
        keras.layers.Dense(192, activation="relu", kernel_initializer=init(0.04), kernel_regularizer=decay,
                           bias_initializer=keras.initializers.Constant(0.1)),
        keras.layers.Dense(10, kernel_initializer=init(1 / 192.0)),
    ]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model


def plain_dataset(filenames, batch_size):
    """The tutorial's pipeline in plain tf.data: each record decoded and augmented on its
    own (tf.image ops), shuffled over 40% of an epoch, batched: (float32 [B, 24, 24, 3],
    int32 [B]) forever."""
    def distort(image, label):
        image = tf.image.random_crop(tf.cast(image, tf.float32), [data.CROPPED_SIZE, data.CROPPED_SIZE, data.DEPTH])
        image = tf.image.random_flip_left_right(image)
        image = tf.image.random_brightness(image, max_delta=data.MAX_BRIGHTNESS_DELTA)
        image = tf.image.random_contrast(image, *data.CONTRAST_RANGE)
        return tf.image.per_image_standardization(image), label

    records = data.count_records(filenames)
    return (data.read_records(filenames).repeat()
            .map(distort, num_parallel_calls=tf.data.AUTOTUNE)
            .shuffle(int(SHUFFLE_FRACTION * records))
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))
