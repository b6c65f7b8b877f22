"""Export the latest checkpoint's moving-average weights as a SavedModel for TensorFlow Serving.

    python cifar10_export.py --checkpoint_dir=/tmp/cifar10_train --export_dir=/tmp/cifar10_model

Writes --export_dir/<step>/: --export_dir is the model's base path for TensorFlow Serving
and each export a numbered version. The SavedModel loads with TensorFlow alone; see
cifar10/export.py for its signatures.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from cifar10 import cli, config, export  # noqa: E402


def build_parser():
    """The exporter's flags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint_dir", default=config.DEFAULT_TRAIN_DIR,
                        help="Folder the trainer writes checkpoints to (its --train_dir); its latest is exported.")
    parser.add_argument("--export_dir", default=config.DEFAULT_EXPORT_DIR,
                        help="The model's base path: the SavedModel goes into a subfolder named by the step.")
    cli.add_verbose_flag(parser)
    return parser


def run_export(args):
    """Export and say where to."""
    path, step, checkpoint = export.export(args.checkpoint_dir, args.export_dir)
    print(f"Exported the moving averages of {checkpoint} (step {step}) to {path}", flush=True)


def main(argv=None):
    args = build_parser().parse_args(argv)
    return cli.run(run_export, args)


if __name__ == "__main__":
    sys.exit(main())
