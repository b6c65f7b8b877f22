"""Export a checkpoint's moving-average weights as a SavedModel for TensorFlow Serving.

The SavedModel goes to <export_dir>/<step>/, the layout TensorFlow Serving watches:
export_dir is the model's base path and each export a numbered version. It needs only
TensorFlow to load and serve, and holds:

  serving_default  images uint8 [N, 32, 32, 3] -> probabilities float32 [N, 10],
                   classes int64 [N]; the evaluation preprocessing (central 24x24 crop,
                   per-image standardization) happens inside.
  predict_encoded  image_bytes string [N], each a JPEG, PNG, GIF or BMP file -> the same
                   outputs, after resizing each image to 32x32.
  class_names      a string variable [10]: the name of each class index.

predict_encoded takes images of up to MAX_IMAGE_PIXELS (4096x4096, about 16.8 million)
pixels in files of up to MAX_IMAGE_FILE_BYTES (about 65 MiB), one at a time, so that a
request needs about 0.3 GB at most to decode and resize a still image. It reads the size
an image declares from its header and refuses a larger one, or a file of another
format, with an InvalidArgumentError before decoding: a small PNG may declare
23000x23000 pixels, which would take 8 GB.
"""
import os
import shutil
import tempfile

import tensorflow as tf

from cifar10 import checkpoints, data
from cifar10.errors import Cifar10Error, check_folder_flag, check_writable_dir
from cifar10.model import Cifar10Model

IMAGES = "images"
IMAGE_BYTES = "image_bytes"  # the "_bytes" suffix lets REST clients send base64 ({"b64": ...})
PROBABILITIES = "probabilities"
CLASSES = "classes"
ENCODED_SIGNATURE = "predict_encoded"
STAGING_PREFIX = ".export-"  # not a number, so TensorFlow Serving ignores it until renamed
MAX_IMAGE_PIXELS = 4096 * 4096  # declared width x height of an image predict_encoded decodes
# An uncompressed 32-bit BMP of MAX_IMAGE_PIXELS, the largest such file, with room for headers.
MAX_IMAGE_FILE_BYTES = 4 * MAX_IMAGE_PIXELS + (1 << 20)
# Leading bytes that declared_shape reads: a BMP's height ends at byte 26, the other
# formats' sizes before it (a JPEG's frame header is found by TensorFlow's parser).
HEADER_BYTES = 26
# Each format predict_encoded decodes, by the bytes its files start with (the ones
# tf.io.decode_image tells them apart by), with where its header declares the size.
JPEG_START, PNG_START, GIF_START, BMP_START = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM"


class ServingModel(tf.Module):
    """A Cifar10Model with its preprocessing, class names and serving signatures."""

    def __init__(self, model):
        super().__init__(name="cifar10_serving")
        self.model = model
        # A variable, because SavedModel keeps variables but not constant attributes.
        self.class_names = tf.Variable(data.CLASS_NAMES, trainable=False, name="class_names")

    @tf.function(input_signature=[tf.TensorSpec([None, data.IMAGE_SIZE, data.IMAGE_SIZE, data.DEPTH],
                                                tf.uint8, name=IMAGES)])
    def predict_images(self, images):
        """uint8 images [N, 32, 32, 3] -> {probabilities: float32 [N, 10], classes: int64 [N]}."""
        logits = self.model(data.crop_and_standardize(images))
        return {PROBABILITIES: tf.nn.softmax(logits), CLASSES: tf.argmax(logits, axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)])
    def predict_encoded(self, image_bytes):
        """Encoded image files string [N] (JPEG, PNG, GIF or BMP, see decode_and_resize for
        the limits) -> the outputs of predict_images, for each image resized to 32x32 with
        antialiasing."""
        # One image at a time, so that a request of N large images needs the memory of one.
        images = tf.map_fn(decode_and_resize, image_bytes, parallel_iterations=1,
                           fn_output_signature=tf.TensorSpec([data.IMAGE_SIZE, data.IMAGE_SIZE, data.DEPTH],
                                                             tf.uint8))
        return self.predict_images(images)


def decode_and_resize(image_bytes):
    """One encoded image file (string scalar) -> uint8 [32, 32, 3] RGB; an animation's first
    frame, grey or RGBA as RGB. A 32x32 image passes through unchanged. Before decoding,
    raises InvalidArgumentError for a file of more than MAX_IMAGE_FILE_BYTES, one that is
    not a JPEG, PNG, GIF or BMP, or an image that declares more than MAX_IMAGE_PIXELS."""
    size = tf.strings.length(image_bytes)
    height, width = tf.unstack(declared_shape(image_bytes))
    checks = [
        tf.debugging.Assert(size <= MAX_IMAGE_FILE_BYTES, [tf.strings.format(
            f"The image file has {{}} bytes, more than the {MAX_IMAGE_FILE_BYTES:,} this model accepts.", [size])]),
        tf.debugging.Assert(height >= 0, ["The file is not a JPEG, PNG, GIF or BMP image."]),
        tf.debugging.Assert(height * width <= MAX_IMAGE_PIXELS, [tf.strings.format(
            f"The image declares {{}}x{{}} pixels, more than the {MAX_IMAGE_PIXELS:,} this model decodes; "
            "scale it down first.", [width, height])]),
    ]
    with tf.control_dependencies(checks):
        image = tf.io.decode_image(image_bytes, channels=data.DEPTH, expand_animations=False)
    resized = tf.image.resize(image, [data.IMAGE_SIZE, data.IMAGE_SIZE], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def declared_shape(image_bytes):
    """int64 [2], the (height, width) that an encoded image file (string scalar) declares,
    read from its header without decoding it: a JPEG's frame header, a PNG's IHDR chunk, a
    GIF's logical screen, a BMP's info header; (-1, -1) for a file of another format.
    Raises InvalidArgumentError for a JPEG without a readable frame header."""
    head = tf.strings.substr(image_bytes, 0, HEADER_BYTES)
    head = tf.strings.substr(tf.strings.join([head, b"\0" * HEADER_BYTES]), 0, HEADER_BYTES)  # short files
    head = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

    def number(start, length, big_endian):
        """The unsigned integer in head[start:start + length]."""
        digits = head[start:start + length]
        return tf.reduce_sum((digits[::-1] if big_endian else digits) * 256 ** tf.range(length, dtype=tf.int64))

    def bmp_number(start):
        """The magnitude of the little-endian int32 at start (a negative height: top-down rows)."""
        value = number(start, 4, big_endian=False)
        return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))

    def starts_with(prefix):
        return tf.strings.substr(image_bytes, 0, len(prefix)) == prefix

    shape = tf.constant([-1, -1], tf.int64)
    for prefix, height, width in [(PNG_START, number(20, 4, True), number(16, 4, True)),
                                  (GIF_START, number(8, 2, False), number(6, 2, False)),
                                  (BMP_START, bmp_number(22), bmp_number(18))]:
        shape = tf.where(starts_with(prefix), tf.stack([height, width]), shape)
    return tf.cond(starts_with(JPEG_START),
                   lambda: tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64),
                   lambda: shape)


def serving_model(checkpoint_dir):
    """The ServingModel of the moving averages of the newest checkpoint in checkpoint_dir
    that loads.
    Returns (ServingModel, step, checkpoint path); raises Cifar10Error if there is none."""
    model = Cifar10Model()
    latest, step = checkpoints.restore_newest_averages(model, checkpoint_dir)
    return ServingModel(model), step, latest


def export(checkpoint_dir, export_dir):
    """Write the latest checkpoint of checkpoint_dir as SavedModel version <step> under
    export_dir; returns (the version folder's path, step, checkpoint path).

    The version folder appears complete or not at all, so a TensorFlow Serving instance
    watching export_dir never loads half a model. Raises Cifar10Error when there is no
    checkpoint, export_dir is not writable or that version exists already.
    """
    check_folder_flag(export_dir, "--export_dir")
    module, step, checkpoint = serving_model(checkpoint_dir)
    version_dir = os.path.join(export_dir, str(step))
    exists_already = Cifar10Error(
        f"{version_dir} exists already: step {step} of {checkpoint_dir} was exported before (or by another "
        "export at the same time). Delete that folder to export it again, or train further to export a new version.")
    if os.path.exists(version_dir):
        raise exists_already
    check_writable_dir(export_dir, "--export_dir")
    staging = tempfile.mkdtemp(dir=export_dir, prefix=STAGING_PREFIX)
    try:
        # Saved one level down: mkdtemp's folder is private (0700), the one saved gets the umask's mode.
        saved = os.path.join(staging, "model")
        tf.saved_model.save(module, saved, signatures={
            tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: module.predict_images,
            ENCODED_SIGNATURE: module.predict_encoded})
        try:
            os.rename(saved, version_dir)  # fails onto a folder that is not empty, and leaves it be
        except OSError as e:
            if not os.path.exists(version_dir):
                raise
            raise exists_already from e  # another export of this step finished first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version_dir, step, checkpoint
