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

With tflite, the version folder also holds model.tflite: serving_default converted to
TensorFlow Lite (float32, the same preprocessing inside, the same inputs and outputs).
With quantize, model_int8.tflite too: the same with int8 weights and activations (but
for the standardization and a few squares), calibrated on the first CALIBRATION_RECORDS
training records; its input and outputs keep their types.

predict_encoded takes images of up to MAX_IMAGE_PIXELS (4096x4096, about 16.8 million)
pixels in files of up to MAX_IMAGE_FILE_BYTES (about 65 MiB), one at a time, so that a
request needs about 0.3 GB at most to decode and resize a still image. It reads the size
an image declares from its header and refuses a larger one, or a file of another
format, with an InvalidArgumentError before decoding: a small PNG may declare
23000x23000 pixels, which would take 8 GB.
"""
import os
import pathlib
import shutil
import tempfile
import warnings

import tensorflow as tf

from cifar10 import checkpoints, data
from cifar10.config import CALIBRATION_RECORDS, DATA_URL, DEFAULT_DATA_DIR, INT8_TFLITE_FILE, TFLITE_FILE
from cifar10.errors import Cifar10Error, check_folder_flag, check_writable_dir
from cifar10.model import Cifar10Model

IMAGES = "images"
IMAGE_BYTES = "image_bytes"  # the "_bytes" suffix lets REST clients send base64 ({"b64": ...})
PROBABILITIES = "probabilities"
CLASSES = "classes"
ENCODED_SIGNATURE = "predict_encoded"
STAGING_PREFIX = ".export-"  # not a number, so TensorFlow Serving ignores it until renamed
# The name scope of tf.image.per_image_standardization, which names the operations of the
# preprocessing's standardization. The int8 TFLite model keeps them in float32: in int8 a
# low-contrast image's standard deviation rounds to 0, and TensorFlow Lite's int8 division
# refuses any divisor whose int8 code is 0, which for this network's calibrated range is a
# standard deviation of about 45, common in CIFAR-10: quantized whole, the model of the
# README's figures failed on 80 of the 10,000 test images (and on any batch holding one).
STANDARDIZATION_SCOPE = "per_image_standardization"
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


def export(checkpoint_dir, export_dir, tflite=False, quantize=False, data_dir=DEFAULT_DATA_DIR,
           data_url=DATA_URL):
    """Write the latest checkpoint of checkpoint_dir as SavedModel version <step> under
    export_dir; returns (the version folder's path, step, checkpoint path).

    tflite: also write TFLITE_FILE into the version folder (see tflite_model). quantize:
    also write INT8_TFLITE_FILE, calibrated on the first CALIBRATION_RECORDS training
    records of data_dir (extracted, or downloaded from data_url, if need be).

    The version folder appears complete, with every file asked for, or not at all, so a
    TensorFlow Serving instance watching export_dir never loads half a model, and a failed
    or interrupted conversion leaves no partial model behind. Raises Cifar10Error when
    there is no checkpoint, export_dir is not writable, that version exists already or
    (with quantize) the training data is missing or damaged.
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
    # Before anything is written, so that missing data leaves nothing behind.
    representative_images = calibration_images(data_dir, data_url) if quantize else None
    staging = tempfile.mkdtemp(dir=export_dir, prefix=STAGING_PREFIX)
    try:
        # Saved one level down: mkdtemp's folder is private (0700), the one saved gets the umask's mode.
        saved = os.path.join(staging, "model")
        tf.saved_model.save(module, saved, signatures={
            tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: module.predict_images,
            ENCODED_SIGNATURE: module.predict_encoded})
        # The TensorFlow Lite models are written inside the staging folder too, so they
        # appear with the rename below, whole, or are deleted with it.
        if tflite:
            pathlib.Path(saved, TFLITE_FILE).write_bytes(tflite_model(saved))
        if quantize:
            pathlib.Path(saved, INT8_TFLITE_FILE).write_bytes(tflite_model(saved, representative_images))
        try:
            os.rename(saved, version_dir)  # fails onto a folder that is not empty, and leaves it be
        except OSError as e:
            if not os.path.exists(version_dir):
                raise
            raise exists_already from e  # another export of this step finished first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version_dir, step, checkpoint


def tflite_model(saved_model_dir, representative_images=None):
    """The serving_default signature of the SavedModel in saved_model_dir as a TensorFlow
    Lite flatbuffer (bytes): images uint8 [N, 32, 32, 3] -> probabilities float32 [N, 10],
    classes int64 [N], the preprocessing inside, as the SavedModel's.

    Float32 when representative_images is None. Otherwise int8, calibrated on
    representative_images (uint8 [M, 32, 32, 3], raw as the model's input): int8
    weights and activations, except the per-image standardization (see
    STANDARDIZATION_SCOPE) and the squares inside the normalizations (TensorFlow Lite
    has no int8 kernel for them), which stay float32; the input and outputs keep their
    types.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY])
    if representative_images is None:
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ({IMAGES: image[None]} for image in representative_images)
    with warnings.catch_warnings():
        # The calibration runs TensorFlow's own tf.lite.Interpreter, which warns that it
        # will move to ai-edge-litert: nothing the user of this export can act on.
        warnings.filterwarnings("ignore", ".*tf.lite.Interpreter is deprecated", UserWarning)
        # TensorFlow Lite's way to keep chosen operations in float32 ("selective
        # quantization"): calibrate, name them, quantize the rest.
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                             debug_dataset=converter.representative_dataset)
        tensors = tf.lite.Interpreter(model_content=debugger.calibrated_model).get_tensor_details()
        standardization = [tensor["name"] for tensor in tensors if STANDARDIZATION_SCOPE in tensor["name"]]
        if not standardization:
            raise RuntimeError(f"No operation of the calibrated model is named {STANDARDIZATION_SCOPE}: this "
                               "TensorFlow names the per-image standardization otherwise, and its int8 version "
                               "would fail on many images. Update export.STANDARDIZATION_SCOPE.")
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=standardization)
        return debugger.get_nondebug_quantized_model()


def calibration_images(data_dir, data_url=DATA_URL):
    """The first CALIBRATION_RECORDS training images of data_dir (fewer if it has fewer),
    uint8 [M, 32, 32, 3], in file order: a sample of every class, since the files are
    shuffled. Extracts or downloads the data first if need be; raises Cifar10Error for
    missing or damaged files."""
    data.maybe_download_and_extract(data_dir, data_url)
    filenames = data.data_files(data_dir)
    data.count_records(filenames)
    images, _ = next(iter(data.read_records(filenames).take(CALIBRATION_RECORDS).batch(CALIBRATION_RECORDS)))
    return images.numpy()
