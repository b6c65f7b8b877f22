"""The CIFAR-10 reader, as the original tutorial's cifar10_input module, and a data check.

    import cifar10_input                       # read_records, distorted_inputs, inputs, ...
    cifar10_input.inputs(True, data_dir, 128)  # the test set: the original's bool works
    python cifar10_input.py --data_dir=/tmp/cifar10_data

As a command it downloads and extracts the data unless it is there, checks every batch
file (size, labels) and prints the record counts.
"""
import sys

from cifar10 import startup

if __name__ == "__main__":  # as a command; imported, it leaves the importing program's TensorFlow be
    startup.begin()  # before anything imports TensorFlow: quiet unless --verbose; GPU memory grows as needed

from cifar10 import cli, data  # noqa: E402
from cifar10.config import TrainConfig  # noqa: E402
from cifar10.data import (CLASS_NAMES, CROPPED_SIZE, IMAGE_SIZE, NUM_CLASSES, count_records,  # noqa: F401
                          distorted_inputs, inputs, maybe_download_and_extract, read_records)  # noqa: E402


def check_data(args):
    """Download/extract if needed, check each file and print its record count."""
    data.maybe_download_and_extract(args.data_dir, args.data_url)
    for path in data.data_files(args.data_dir) + data.data_files(args.data_dir, "test"):
        print(f"{path}: {count_records([path])} records")


def main(argv=None):
    parser = cli.parser_for(TrainConfig, __doc__, only=("data_dir", "data_url"))
    return cli.run(check_data, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
