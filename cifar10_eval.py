"""Evaluate CIFAR-10 checkpoints: precision @ 1 of the moving-average weights.

    python cifar10_eval.py --checkpoint_dir=/tmp/cifar10_train --run_once

Without --run_once it evaluates each new checkpoint in --checkpoint_dir as it appears,
every --eval_interval_secs, until interrupted. Results also go to TensorBoard in
--eval_dir.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from cifar10 import cli, config, evaluator  # noqa: E402


def build_parser():
    """The evaluator's flags, with the original tutorial's names and defaults."""
    defaults = config.EvalConfig
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval_dir", default=defaults.eval_dir, help="Folder to write event logs to.")
    parser.add_argument("--eval_data", default=defaults.eval_data, choices=["test", "train_eval"],
                        help="Evaluate test_batch.bin ('test') or the training files ('train_eval').")
    parser.add_argument("--checkpoint_dir", default=defaults.checkpoint_dir,
                        help="Folder the trainer writes checkpoints to (its --train_dir).")
    parser.add_argument("--eval_interval_secs", type=float, default=defaults.eval_interval_secs,
                        help="How often, in seconds, to look for a new checkpoint.")
    parser.add_argument("--num_examples", type=int, default=defaults.num_examples,
                        help="How many examples of the set to evaluate, from its start.")
    cli.add_bool_flag(parser, "run_once", "Evaluate the latest checkpoint once and exit.")
    parser.add_argument("--data_dir", default=defaults.data_dir, help="Folder of the CIFAR-10 data.")
    parser.add_argument("--batch_size", type=int, default=defaults.batch_size,
                        help="Images the model sees at once, views included (does not change the result).")
    parser.add_argument("--views", type=int, default=defaults.views, choices=config.EVAL_VIEW_COUNTS,
                        help="Views of each image to average predictions over: 1, the central 24x24 crop "
                             "(the tutorial's); 2, it and its mirror image; 10, the central and four corner "
                             "crops and their mirror images (cuda-convnet's multi-view test).")
    parser.add_argument("--data_url", default=defaults.data_url,
                        help="Where to download the archive from when --data_dir lacks it (a mirror).")
    cli.add_verbose_flag(parser)
    return parser


def config_from(args):
    """The EvalConfig for parsed flags."""
    return config.EvalConfig(
        data_dir=args.data_dir, eval_dir=args.eval_dir, checkpoint_dir=args.checkpoint_dir,
        eval_data=args.eval_data, eval_interval_secs=args.eval_interval_secs, num_examples=args.num_examples,
        run_once=args.run_once, batch_size=args.batch_size, data_url=args.data_url, views=args.views)


def main(argv=None):
    args = build_parser().parse_args(argv)
    return cli.run(lambda a: evaluator.evaluate(config_from(a)), args)


if __name__ == "__main__":
    sys.exit(main())
