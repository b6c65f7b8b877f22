"""Label image files with the CIFAR-10 network: its top classes and their probabilities.

    python cifar10_predict.py --model=/tmp/cifar10_model cat.png truck.jpg
    python cifar10_predict.py --checkpoint_dir=/tmp/cifar10_train --top_k=5 cat.png

prints one line per file, e.g. `cat.png: cat 0.812, dog 0.101, frog 0.040`. --model is
the --export_dir of cifar10_export.py (its highest version is used) or one version
folder; --checkpoint_dir uses the latest checkpoint's moving averages directly. JPEG,
PNG, GIF and BMP files of up to 4096x4096 pixels (16.8 million; see cifar10/export.py)
are resized to 32x32; a larger image is refused before decoding. Files that cannot be
labelled are named on stderr, and the exit status is then 1.
"""
import argparse
import sys

from cifar10 import startup

startup.begin()  # before anything imports TensorFlow: quiet unless --verbose; GPU memory grows as needed

from cifar10 import cli, config, predict  # noqa: E402

DEFAULT_TOP_K = 3


def build_parser():
    """The predictor's flags: one model source, top_k and the image files."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="A SavedModel base path written by cifar10_export.py, or one of "
                                        "its numbered version folders.")
    source.add_argument("--checkpoint_dir", default=config.DEFAULT_TRAIN_DIR,
                        help="Without --model: the folder of the checkpoints (the trainer's --train_dir); "
                             f"default {config.DEFAULT_TRAIN_DIR}.")
    parser.add_argument("--top_k", type=int, default=DEFAULT_TOP_K, help="How many classes to print per file.")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="JPEG, PNG, GIF or BMP files of up to 4096x4096 pixels.")
    cli.add_verbose_flag(parser)
    return parser


def run_predict(args):
    """Load the predictor and label the files."""
    predictor = predict.load_exported(args.model) if args.model else predict.load_checkpoint(args.checkpoint_dir)
    predict.label_files(predictor, args.images, args.top_k)


def main(argv=None):
    args = build_parser().parse_args(argv)
    return cli.run(run_predict, args)


if __name__ == "__main__":
    sys.exit(main())
