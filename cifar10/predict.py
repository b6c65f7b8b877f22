"""Label image files with an exported SavedModel or the latest checkpoint.

Both predictors are the same object as far as this module cares: a predict_encoded
function (encoded image files string [N] -> probabilities float32 [N, 10]) and a
class_names variable (string [10]).
"""
import os
import sys

import tensorflow as tf
from google.protobuf.message import DecodeError

from cifar10 import export
from cifar10.errors import Cifar10Error

SAVED_MODEL_FILE = "saved_model.pb"


def resolve_version(model_dir):
    """The SavedModel folder for model_dir: itself if it is one, else its highest numbered
    version folder (TensorFlow Serving's base path layout). Raises Cifar10Error if neither."""
    if os.path.isfile(os.path.join(model_dir, SAVED_MODEL_FILE)):
        return model_dir
    try:
        versions = [name for name in os.listdir(model_dir) if name.isascii() and name.isdigit()
                    and os.path.isfile(os.path.join(model_dir, name, SAVED_MODEL_FILE))]
    except OSError as e:
        raise Cifar10Error(f"Cannot read --model={model_dir}: {e.strerror}. Pass the --export_dir of "
                           "cifar10_export.py, or one of its numbered version folders.") from e
    if not versions:
        raise Cifar10Error(f"--model={model_dir} holds no SavedModel, neither itself nor in a numbered version "
                           "folder. Pass the --export_dir of cifar10_export.py (run it first), or one of its "
                           "numbered version folders.")
    # The number decides, as for TensorFlow Serving, but the folder keeps its name ("007").
    return os.path.join(model_dir, max(versions, key=lambda name: (int(name), name)))


def load_exported(model_dir):
    """The predictor exported to model_dir (a base path or a version folder)."""
    path = resolve_version(model_dir)
    try:
        predictor = tf.saved_model.load(path)
    except (OSError, ValueError, KeyError, DecodeError, tf.errors.OpError) as e:
        # A damaged or partly copied folder, or one written by a newer TensorFlow.
        raise Cifar10Error(f"Cannot load the SavedModel in {path}: {first_line(e)}. Export it again with "
                           f"cifar10_export.py; if a newer TensorFlow wrote it, upgrade TensorFlow "
                           f"(this is {tf.__version__}).") from e
    if not hasattr(predictor, export.ENCODED_SIGNATURE) or not hasattr(predictor, "class_names"):
        raise Cifar10Error(f"{path} is a SavedModel, but not one written by cifar10_export.py (it lacks "
                           f"{export.ENCODED_SIGNATURE} or class_names). Export one with cifar10_export.py.")
    return predictor


def load_checkpoint(checkpoint_dir):
    """The predictor of the latest checkpoint's moving averages in checkpoint_dir, built in
    this process, the same as cifar10_export.py would export it."""
    return export.serving_model(checkpoint_dir)[0]


def label_files(predictor, paths, top_k):
    """Print, for each image file in paths, 'path: name p, name p, ...' with its top_k
    classes, most probable first. A file that cannot be read or decoded gets a line on
    stderr; the rest are still labelled, then Cifar10Error names the files skipped."""
    class_names = [name.decode() for name in predictor.class_names.numpy()]
    if not 1 <= top_k <= len(class_names):
        raise Cifar10Error(f"--top_k={top_k}: it must be between 1 and {len(class_names)}.")
    skipped = []
    for path in paths:
        try:
            probabilities = predict_file(predictor, path)
        except Cifar10Error as e:
            print(e, file=sys.stderr, flush=True)
            skipped.append(path)
            continue
        top = (-probabilities).argsort(kind="stable")[:top_k]  # ties in class order
        print(f"{path}: " + ", ".join(f"{class_names[i]} {probabilities[i]:.3f}" for i in top), flush=True)
    if skipped:
        raise Cifar10Error(f"{len(skipped)} of {len(paths)} files could not be labelled: {', '.join(skipped)}. "
                           f"Pass readable JPEG, PNG, GIF or BMP files of at most {export.MAX_IMAGE_PIXELS:,} "
                           "pixels.")


def predict_file(predictor, path):
    """The class probabilities float32 [10] of one image file. Raises Cifar10Error, one
    line naming the file, when it cannot be read, is not an image or is larger than
    export.MAX_IMAGE_FILE_BYTES or export.MAX_IMAGE_PIXELS; the size the image declares is
    checked here before decoding, also for models exported without that check."""
    try:
        with open(path, "rb") as f:
            image_bytes = f.read(export.MAX_IMAGE_FILE_BYTES + 1)
    except OSError as e:
        raise Cifar10Error(f"{path}: skipped, cannot read it: {e.strerror}") from e
    if len(image_bytes) > export.MAX_IMAGE_FILE_BYTES:
        raise Cifar10Error(f"{path}: skipped, larger than {export.MAX_IMAGE_FILE_BYTES:,} bytes, the limit "
                           "for an image file")
    not_an_image = f"{path}: skipped, not a JPEG, PNG, GIF or BMP image"
    try:
        height, width = export.declared_shape(tf.constant(image_bytes)).numpy()
        if height < 0:
            raise Cifar10Error(not_an_image)
        if height * width > export.MAX_IMAGE_PIXELS:
            raise Cifar10Error(f"{path}: skipped, it declares {width}x{height} pixels, more than the limit of "
                               f"{export.MAX_IMAGE_PIXELS:,}; scale it down first")
        outputs = predictor.predict_encoded(tf.constant([image_bytes]))
    except tf.errors.InvalidArgumentError as e:
        raise Cifar10Error(not_an_image) from e
    except tf.errors.ResourceExhaustedError as e:
        raise Cifar10Error(f"{path}: skipped, not enough memory to decode it; scale it down first") from e
    return outputs[export.PROBABILITIES][0].numpy()


def first_line(error):
    """The first line of an exception's message (TensorFlow's go on with node names)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
