"""Precision @ 1 against wall-clock minutes for a training recipe: the README's curves.

    python -m benchmarks.recipe_curve --data_dir=/tmp/cifar10_data --recipe=fast

Runs cifar10_train.py (in --train_dir, which must be new or empty) as it is, copies each checkpoint it
writes (every --save_checkpoint_secs) aside, and when training ends evaluates every
copy on test_batch.bin, so that the evaluations take nothing from the training run.
Prints, and writes to <train_dir>/curve.tsv, minutes since the trainer started,
step, epoch and precision @ 1 of the central crop (cifar10_eval.py's default) and of
10 views (--views=10). Extra flags go to cifar10_train.py.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from cifar10 import data, evaluator  # noqa: E402
from cifar10.model import Cifar10Model  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLL_SECS = 2.0


def snapshot_new_checkpoints(train_dir, keep_dir, started, copied):
    """Copy checkpoints of train_dir not yet in copied ({path: minutes}) into keep_dir."""
    latest = tf.train.latest_checkpoint(train_dir)
    if latest is None or latest in copied:
        return
    name = os.path.basename(latest)
    minutes = (os.path.getmtime(latest + ".index") - started) / 60
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(latest + suffix, os.path.join(keep_dir, name + suffix))
    copied[latest] = (os.path.join(keep_dir, name), minutes)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--train_dir", default="/tmp/cifar10_curve", help="A new or empty folder.")
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--save_checkpoint_secs", type=float, default=120)
    args, trainer_flags = parser.parse_known_args()

    if os.path.isdir(args.train_dir) and os.listdir(args.train_dir):
        # Never deletes what it did not write: the curve needs a run of its own from step 0.
        print(f"error: --train_dir={args.train_dir} is not empty. Pass a new or empty folder for this curve's "
              "run; nothing was changed.", file=sys.stderr)
        return 1
    keep_dir = os.path.join(args.train_dir, "curve_checkpoints")
    os.makedirs(keep_dir)
    command = [sys.executable, os.path.join(REPO, "cifar10_train.py"), f"--data_dir={args.data_dir}",
               f"--train_dir={args.train_dir}", f"--recipe={args.recipe}",
               f"--save_checkpoint_secs={args.save_checkpoint_secs}", "--log_frequency=100", *trainer_flags]
    print(" ".join(command), flush=True)
    started = time.time()
    with open(os.path.join(args.train_dir, "train.log"), "w") as log:
        trainer = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        copied = {}
        while trainer.poll() is None:
            snapshot_new_checkpoints(args.train_dir, keep_dir, started, copied)
            time.sleep(POLL_SECS)
        snapshot_new_checkpoints(args.train_dir, keep_dir, started, copied)
    if trainer.returncode:
        sys.exit(f"cifar10_train.py failed; see {log.name}")
    header = re.search(r"([\d.]+) steps an epoch", open(log.name).read())
    steps_per_epoch = float(header.group(1))

    filenames = data.data_files(args.data_dir, "test")
    count = data.count_records(filenames)
    datasets = [data.evaluation_dataset(filenames, 1000 // views, count, views) for views in (1, 10)]
    model = Cifar10Model()
    predict = evaluator.make_predict(model)
    rows = ["minutes\tstep\tepoch\tprecision_at_1\tprecision_at_1_10_views"]
    for path, minutes in sorted(copied.values(), key=lambda item: item[1]):
        one, ten = (evaluator.evaluate_checkpoint(path, dataset, model, predict) for dataset in datasets)
        rows.append(f"{minutes:.1f}\t{one.step}\t{one.step / steps_per_epoch:.1f}\t{one.precision:.4f}\t"
                    f"{ten.precision:.4f}")
        print(rows[-1], flush=True)
    with open(os.path.join(args.train_dir, "curve.tsv"), "w") as out:
        out.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
