"""Export a checkpoint's moving-average weights as a SavedModel for TensorFlow Serving.

The SavedModel goes to <export_dir>/<step>/, the layout TensorFlow Serving watches:
export_dir is the model's base path and each export a numbered version. It needs only
TensorFlow to load and serve, and holds:

  serving_default  images uint8 [N, 32, 32, 3] -> probabilities float32 [N, 10],
                   classes int64 [N]; the evaluation preprocessing (central 24x24 crop,
                   per-image standardization) happens inside.
  predict_encoded  image_bytes string [N], each a JPEG, PNG, GIF or BMP file of any
                   size -> the same outputs, after resizing each image to 32x32.
  class_names      a string variable [10]: the name of each class index.
"""
import os
import shutil
import tempfile

import tensorflow as tf

from cifar10 import data
from cifar10.config import Cifar10Error, check_writable_dir
from cifar10.evaluator import latest_checkpoint, restore_averages
from cifar10.model import Cifar10Model

IMAGES = "images"
IMAGE_BYTES = "image_bytes"  # the "_bytes" suffix lets REST clients send base64 ({"b64": ...})
PROBABILITIES = "probabilities"
CLASSES = "classes"
ENCODED_SIGNATURE = "predict_encoded"
STAGING_PREFIX = ".export-"  # not a number, so TensorFlow Serving ignores it until renamed


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
        """Encoded image files string [N] (JPEG, PNG, GIF or BMP, any size) -> the outputs of
        predict_images, for each image resized to 32x32 with antialiasing."""
        images = tf.map_fn(decode_and_resize, image_bytes,
                           fn_output_signature=tf.TensorSpec([data.IMAGE_SIZE, data.IMAGE_SIZE, data.DEPTH],
                                                             tf.uint8))
        return self.predict_images(images)


def decode_and_resize(image_bytes):
    """One encoded image file (string scalar) -> uint8 [32, 32, 3] RGB; an animation's first
    frame, grey or RGBA as RGB. A 32x32 image passes through unchanged."""
    image = tf.io.decode_image(image_bytes, channels=data.DEPTH, expand_animations=False)
    resized = tf.image.resize(image, [data.IMAGE_SIZE, data.IMAGE_SIZE], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def serving_model(checkpoint_dir):
    """The ServingModel of the latest checkpoint's moving averages in checkpoint_dir.
    Returns (ServingModel, step, checkpoint path); raises Cifar10Error if there is none."""
    latest = latest_checkpoint(checkpoint_dir)
    model = Cifar10Model()
    step = restore_averages(model, latest)
    return ServingModel(model), step, latest


def export(checkpoint_dir, export_dir):
    """Write the latest checkpoint of checkpoint_dir as SavedModel version <step> under
    export_dir; returns (the version folder's path, step, checkpoint path).

    The version folder appears complete or not at all, so a TensorFlow Serving instance
    watching export_dir never loads half a model. Raises Cifar10Error when there is no
    checkpoint, export_dir is not writable or that version exists already.
    """
    module, step, checkpoint = serving_model(checkpoint_dir)
    version_dir = os.path.join(export_dir, str(step))
    if os.path.exists(version_dir):
        raise Cifar10Error(f"{version_dir} exists already: step {step} of {checkpoint_dir} was exported before. "
                           "Delete that folder to export it again, or train further to export a new version.")
    check_writable_dir(export_dir, "--export_dir")
    staging = tempfile.mkdtemp(dir=export_dir, prefix=STAGING_PREFIX)
    try:
        # Saved one level down: mkdtemp's folder is private (0700), the one saved gets the umask's mode.
        saved = os.path.join(staging, "model")
        tf.saved_model.save(module, saved, signatures={
            tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: module.predict_images,
            ENCODED_SIGNATURE: module.predict_encoded})
        os.rename(saved, version_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version_dir, step, checkpoint
