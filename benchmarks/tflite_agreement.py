"""How far the TensorFlow Lite models of an export agree with its SavedModel: the README's figures.

    python cifar10_export.py --checkpoint_dir=/tmp/tflite_run --export_dir=/tmp/tflite_export --tflite --quantize
    python -m benchmarks.tflite_agreement --model=/tmp/tflite_export --data_dir=/tmp/cifar10_data

Runs every record of test_batch.bin through the SavedModel's serving_default signature
and through model.tflite and model_int8.tflite of the same version folder (--model: the
export's --export_dir, whose highest version is taken, or a version folder), with
TensorFlow's own TFLite interpreter, and prints each model's size in bytes and precision @ 1
and how often each TFLite model's top-1 class is the SavedModel's.
"""
import argparse
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from cifar10 import data, predict  # noqa: E402
from cifar10.config import INT8_TFLITE_FILE, TFLITE_FILE  # noqa: E402

BATCH_SIZE = 1000  # images a model sees at once (bounds the interpreter's memory, not the result)


def tflite_classes(path, images):
    """The top-1 class, int64 [N], of the .tflite file at path for uint8 images [N, 32, 32, 3]."""
    with warnings.catch_warnings():  # tf.lite.Interpreter works, but says it will move to ai-edge-litert
        warnings.simplefilter("ignore", UserWarning)
        run = tf.lite.Interpreter(model_path=path).get_signature_runner()
    return np.concatenate([run(images=images[start:start + BATCH_SIZE])["classes"]
                           for start in range(0, len(images), BATCH_SIZE)])


def saved_model_bytes(version):
    """Bytes of the SavedModel in the folder version: saved_model.pb and variables/."""
    variables = os.path.join(version, "variables")
    return os.path.getsize(os.path.join(version, predict.SAVED_MODEL_FILE)) + sum(
        os.path.getsize(os.path.join(variables, name)) for name in os.listdir(variables))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="The export's --export_dir, or one of its version folders.")
    parser.add_argument("--data_dir", required=True, help="The data folder; its test_batch.bin is used.")
    args = parser.parse_args()

    version = predict.resolve_version(args.model)
    filenames = data.data_files(args.data_dir, "test")
    count = data.count_records(filenames)
    images, labels = (tensor.numpy() for tensor in next(iter(data.read_records(filenames).batch(count))))
    serving = tf.saved_model.load(version).signatures["serving_default"]
    saved = np.concatenate([serving(images=tf.constant(images[start:start + BATCH_SIZE]))["classes"].numpy()
                            for start in range(0, count, BATCH_SIZE)])

    print(f"{version}, {count} records of {filenames[0]}")
    print("model\tbytes\tprecision @ 1\ttop-1 agreement with the SavedModel")
    print(f"SavedModel\t{saved_model_bytes(version)}\t{np.mean(saved == labels):.4f}\t")
    for name in (TFLITE_FILE, INT8_TFLITE_FILE):
        path = os.path.join(version, name)
        classes = tflite_classes(path, images)
        print(f"{name}\t{os.path.getsize(path)}\t{np.mean(classes == labels):.4f}\t"
              f"{np.mean(classes == saved):.4f} ({np.sum(classes == saved)}/{count})")


if __name__ == "__main__":
    main()
