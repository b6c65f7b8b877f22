"""Run a program with the first GPU split into N logical GPUs, so that a one-GPU machine
runs N towers (tf.distribute.MirroredStrategy over N logical GPUs):

    python -m benchmarks.logical_gpus 2 cifar10_multi_gpu_train.py --num_gpus=2 ...

The towers share one physical GPU, so this checks that the tower path works (and what
the collectives cost); it says nothing of scaling across real GPUs. Exits with the
program's status; without a GPU, status 1 and a message.
"""
import os
import runpy
import sys

from cifar10 import startup

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
startup.use_onednn()  # as the program would (its own startup.begin() comes after this import)

import tensorflow as tf  # noqa: E402

MEMORY_PER_LOGICAL_GPU_MB = 16 * 1024  # far more than this network needs at any batch users pick


def main(argv):
    if len(argv) < 2 or not argv[0].isdigit() or int(argv[0]) < 1:
        print(__doc__, file=sys.stderr)
        return 2
    count, program = int(argv[0]), argv[1]
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print("benchmarks/logical_gpus.py: this machine has no GPU to split", file=sys.stderr)
        return 1
    tf.config.set_logical_device_configuration(
        gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=MEMORY_PER_LOGICAL_GPU_MB)] * count)
    sys.argv = [program] + argv[2:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
    try:
        runpy.run_path(program, run_name="__main__")
    except SystemExit as e:  # the program's own sys.exit(status)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
