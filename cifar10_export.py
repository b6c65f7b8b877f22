"""Export the latest checkpoint's moving-average weights as a SavedModel for TensorFlow Serving.

    python cifar10_export.py --checkpoint_dir=/tmp/cifar10_train --export_dir=/tmp/cifar10_model

Writes --export_dir/<step>/: --export_dir is the model's base path for TensorFlow Serving
and each export a numbered version. The SavedModel loads with TensorFlow alone; see
cifar10/export.py for its signatures.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from cifar10 import cli, export  # noqa: E402
from cifar10.config import ExportConfig  # noqa: E402


def run_export(config):
    """Export and say where to."""
    path, step, checkpoint = export.export(config.checkpoint_dir, config.export_dir)
    print(f"Exported the moving averages of {checkpoint} (step {step}) to {path}", flush=True)


def main(argv=None):
    return cli.main(ExportConfig, run_export, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
