"""Evaluate CIFAR-10 checkpoints: precision @ 1 of the moving-average weights.

    python cifar10_eval.py --checkpoint_dir=/tmp/cifar10_train --run_once

Without --run_once it evaluates each new checkpoint in --checkpoint_dir as it appears,
every --eval_interval_secs, until interrupted. Results also go to TensorBoard in
--eval_dir.
"""
import sys

from cifar10 import startup

startup.begin()  # before anything imports TensorFlow: quiet unless --verbose; GPU memory grows as needed

from cifar10 import cli, evaluator  # noqa: E402
from cifar10.config import EvalConfig  # noqa: E402


def main(argv=None):
    return cli.main(EvalConfig, evaluator.evaluate, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
