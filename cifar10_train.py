"""Train the CIFAR-10 network on one device.

    python cifar10_train.py --data_dir=/tmp/cifar10_data --train_dir=/tmp/cifar10_train --max_steps=100000

Downloads the data into --data_dir unless it is there, resumes from the latest
checkpoint in --train_dir, and writes checkpoints and TensorBoard summaries there.
With TF_CONFIG describing several workers, each worker runs this same command and
they train as one job (see README.md).
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

import tensorflow as tf  # noqa: E402

from cifar10 import cli, config, distribute, trainer  # noqa: E402


def build_parser(description=__doc__):
    """The trainers' flags, with the original tutorial's names and defaults."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=config.DEFAULT_DATA_DIR,
                        help="Folder of the CIFAR-10 data: cifar-10-batches-bin/, or the archive to extract or download.")
    parser.add_argument("--train_dir", default=config.DEFAULT_TRAIN_DIR,
                        help="Folder for checkpoints and event logs; a run resumes from the checkpoints there.")
    parser.add_argument("--max_steps", type=int, default=config.TrainConfig.max_steps,
                        help="Train until the step count reaches this (resumed runs included).")
    parser.add_argument("--batch_size", type=int, default=config.TrainConfig.batch_size,
                        help="Images per batch (per tower with several towers).")
    parser.add_argument("--log_frequency", type=int, default=config.TrainConfig.log_frequency,
                        help="How often, in steps, to log the loss and speed.")
    cli.add_bool_flag(parser, "log_device_placement", "Log the device each operation runs on.")
    parser.add_argument("--save_checkpoint_secs", type=float, default=config.TrainConfig.save_checkpoint_secs,
                        help="Save a checkpoint at least this often, in seconds (0: off).")
    parser.add_argument("--save_checkpoint_steps", type=int, default=config.TrainConfig.save_checkpoint_steps,
                        help="Also save every this many steps (0: off).")
    parser.add_argument("--save_summaries_steps", type=int, default=config.TrainConfig.save_summaries_steps,
                        help="Write histograms and images to TensorBoard every this many steps (0: off).")
    parser.add_argument("--recipe", default=config.TrainConfig.recipe, choices=sorted(config.RECIPES),
                        help="'tutorial': the original schedule, until --max_steps; 'fast' and 'long': momentum, "
                             "warm-up and linear decay over a fixed number of epochs (README.md, Speed).")
    cli.add_bool_flag(parser, "use_fp16", "Mixed precision: bfloat16 on a CPU, float16 with loss scaling on a GPU; "
                                          "variables and moving averages stay float32. Default: on where the "
                                          "hardware computes in 16 bits natively (a GPU, or a CPU with AMX or "
                                          "AVX512-BF16), else off.", default=None)
    parser.add_argument("--data_url", default=config.DATA_URL,
                        help="Where to download the archive from when --data_dir lacks it (a mirror).")
    cli.add_verbose_flag(parser)
    return parser


def config_from(args):
    """The TrainConfig for parsed flags."""
    return config.TrainConfig(
        data_dir=args.data_dir, train_dir=args.train_dir, max_steps=args.max_steps, batch_size=args.batch_size,
        log_frequency=args.log_frequency, log_device_placement=args.log_device_placement,
        save_checkpoint_secs=args.save_checkpoint_secs, save_checkpoint_steps=args.save_checkpoint_steps,
        save_summaries_steps=args.save_summaries_steps, data_url=args.data_url, recipe=args.recipe,
        use_fp16=args.use_fp16)


def run_training(args, num_gpus=None):
    """Build the strategy (one device, towers, or several workers) and train."""
    train_config = config_from(args)
    tf.debugging.set_log_device_placement(train_config.log_device_placement)
    trainer.train(train_config, distribute.make_strategy(num_gpus))


def main(argv=None):
    args = build_parser().parse_args(argv)
    return cli.run(run_training, args)


if __name__ == "__main__":
    sys.exit(main())
