"""Train the CIFAR-10 network on one device.

    python cifar10_train.py --data_dir=/tmp/cifar10_data --train_dir=/tmp/cifar10_train --max_steps=100000

Downloads the data into --data_dir unless it is there, resumes from the latest
checkpoint in --train_dir, and writes checkpoints and TensorBoard summaries there.
With TF_CONFIG describing several workers, each worker runs this same command and
they train as one job (see README.md).
"""
import sys

from cifar10 import startup

startup.begin()  # before anything imports TensorFlow: quiet unless --verbose; GPU memory grows as needed

from cifar10 import cli, trainer  # noqa: E402
from cifar10.config import TrainConfig  # noqa: E402


def main(argv=None):
    return cli.main(TrainConfig, trainer.run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
