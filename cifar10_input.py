"""The CIFAR-10 reader, as the original tutorial's cifar10_input module, and a data check.

    import cifar10_input                       # read_records, distorted_inputs, inputs, ...
    cifar10_input.inputs(True, data_dir, 128)  # the test set: the original's bool works
    python cifar10_input.py --data_dir=/tmp/cifar10_data

As a command it downloads and extracts the data unless it is there, checks every batch
file (size, labels) and prints the record counts.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from cifar10 import cli, config, data  # noqa: E402
from cifar10.data import (CLASS_NAMES, CROPPED_SIZE, IMAGE_SIZE, NUM_CLASSES, count_records,  # noqa: F401
                          distorted_inputs, inputs, maybe_download_and_extract, read_records)  # noqa: E402


def check_data(args):
    """Download/extract if needed, check each file and print its record count."""
    data.maybe_download_and_extract(args.data_dir, args.data_url)
    for path in data.data_files(args.data_dir) + data.data_files(args.data_dir, "test"):
        print(f"{path}: {count_records([path])} records")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=config.DEFAULT_DATA_DIR, help="Folder of the CIFAR-10 data.")
    parser.add_argument("--data_url", default=config.DATA_URL, help="Where to download the archive from.")
    cli.add_verbose_flag(parser)
    return cli.run(check_data, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
