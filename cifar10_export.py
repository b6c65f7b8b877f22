"""Export the latest checkpoint's moving-average weights as a SavedModel for TensorFlow Serving,
and optionally as TensorFlow Lite models.

    python cifar10_export.py --checkpoint_dir=/tmp/cifar10_train --export_dir=/tmp/cifar10_model
    python cifar10_export.py --checkpoint_dir=/tmp/cifar10_train --export_dir=/tmp/cifar10_model --quantize

Writes --export_dir/<step>/: --export_dir is the model's base path for TensorFlow Serving
and each export a numbered version. The SavedModel loads with TensorFlow alone; see
cifar10/export.py for its signatures. --tflite adds model.tflite to that folder (float32,
for TensorFlow Lite); --quantize adds model_int8.tflite as well (int8, calibrated on
training records of --data_dir) and implies --tflite.
"""
import os
import sys

from cifar10 import startup

startup.begin()  # before anything imports TensorFlow: quiet unless --verbose; GPU memory grows as needed

from cifar10 import cli, export  # noqa: E402
from cifar10.config import INT8_TFLITE_FILE, TFLITE_FILE, ExportConfig  # noqa: E402


def run_export(config):
    """Export and say where to."""
    path, step, checkpoint = export.export(config.checkpoint_dir, config.export_dir, tflite=config.tflite,
                                           quantize=config.quantize, data_dir=config.data_dir,
                                           data_url=config.data_url)
    print(f"Exported the moving averages of {checkpoint} (step {step}) to {path}", flush=True)
    for name, asked in ((TFLITE_FILE, config.tflite), (INT8_TFLITE_FILE, config.quantize)):
        if asked:
            model = os.path.join(path, name)
            print(f"TensorFlow Lite model: {model} ({os.path.getsize(model):,} bytes)", flush=True)


def main(argv=None):
    return cli.main(ExportConfig, run_export, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
