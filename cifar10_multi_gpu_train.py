"""Train the CIFAR-10 network with one tower per GPU (tf.distribute.MirroredStrategy).

    python cifar10_multi_gpu_train.py --num_gpus=2 --max_steps=100000

Each tower processes --batch_size images a step, so a step sees num_gpus x batch_size;
the towers' gradients are averaged into one set of variables. On a machine with no
GPU the towers run on as many logical CPU devices. Checkpoints are the same as
cifar10_train.py's: either trainer resumes the other's, and cifar10_eval.py reads both.
"""
import sys

from cifar10 import startup

startup.begin()  # before anything imports TensorFlow: quiet unless --verbose; GPU memory grows as needed

from cifar10 import cli, trainer  # noqa: E402
from cifar10.config import TrainConfig  # noqa: E402


def main(argv=None):
    parser = cli.parser_for(TrainConfig, __doc__)
    parser.add_argument("--num_gpus", type=int, default=1, help="How many GPUs (towers) to use.")
    args = parser.parse_args(argv)
    if args.num_gpus < 1:
        parser.error(f"--num_gpus={args.num_gpus}: it must be at least 1")
    return cli.run(lambda a: trainer.run(cli.config_from(TrainConfig, a), num_gpus=a.num_gpus), args)


if __name__ == "__main__":
    sys.exit(main())
