"""How fast the suite trains, reads and evaluates on this machine, side by side with Keras.

    python -m benchmarks.benchmark [--data_dir=/tmp/cifar10_data] [--batch_size=128]

Prints one table. Training rows: this project's compiled step in float32 and in mixed
precision (bfloat16 on a CPU, float16 on a GPU), and the same network as a plain Keras
model.fit (benchmarks/keras_baseline.py), fed by the plain per-example tf.data
pipeline such a user writes, and again fed by this project's pipeline; all timed
interleaved: window after window, each trainer in turn, so that whatever else
the machine does falls on all of them alike. Figures are medians over the windows
after a warm-up. Then the input pipeline alone, and one evaluation pass. Without
--data_dir it writes random records in the binary format (the speed does not depend on
the pixels). Not a test: CI does not run it.
"""
import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import keras_baseline  # noqa: E402
from cifar10 import data, evaluator, trainer  # noqa: E402
from cifar10.config import TrainConfig  # noqa: E402
from cifar10.model import Cifar10Model  # noqa: E402

SYNTHETIC_TRAIN_RECORDS = 25_000
SYNTHETIC_TEST_RECORDS = 10_000
SKIPPED_STEPS = 3  # at the start of each window: iterator and tracing warm-up


def write_synthetic_data(folder):
    """Random records in the official layout under folder; returns folder."""
    rng = np.random.default_rng(0)
    batches = os.path.join(folder, data.BATCHES_DIR)
    os.makedirs(batches)
    names = [(name, SYNTHETIC_TRAIN_RECORDS // len(data.TRAIN_FILES)) for name in data.TRAIN_FILES]
    for name, count in names + [(data.TEST_FILE, SYNTHETIC_TEST_RECORDS)]:
        records = rng.integers(0, 256, size=[count, data.RECORD_BYTES], dtype=np.uint8)
        records[:, 0] %= data.NUM_CLASSES
        records.tofile(os.path.join(batches, name))
    return folder


class OurTrainer:
    """This project's training step (one device) in the given compute dtype, as
    trainer.build sets it up for cifar10_train.py (in a scratch --train_dir)."""

    def __init__(self, data_dir, batch_size, dtype):
        config = TrainConfig(data_dir=data_dir, train_dir=tempfile.mkdtemp(prefix="cifar10_benchmark_train_"),
                             batch_size=batch_size, use_fp16=dtype != tf.float32)
        self.training = trainer.build(config, tf.distribute.get_strategy())

    def seconds_per_step(self, steps):
        # A new iterator each window, as Keras's fit makes: batches prefetched while the
        # other trainers ran would otherwise come for free.
        iterator = iter(self.training.dataset)
        for _ in range(SKIPPED_STEPS):
            loss, _, _ = self.training.train_step(iterator)
        float(loss)
        start = time.perf_counter()
        for _ in range(steps):
            loss, _, _ = self.training.train_step(iterator)
        float(loss)  # waits for the last step
        return (time.perf_counter() - start) / steps


class KerasTrainer:
    """The same network through keras.Model.fit, on the given dataset."""

    def __init__(self, dataset):
        self.model = keras_baseline.build_model()
        self.dataset = dataset

    def seconds_per_step(self, steps):
        started = []
        callback = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: started.append(
            time.perf_counter()) if batch == SKIPPED_STEPS - 1 else None)
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=SKIPPED_STEPS + steps, verbose=0,
                       callbacks=[callback])
        return (time.perf_counter() - started[0]) / steps


def input_pipeline_rate(filenames, batch_size, batches):
    """Examples/sec of the training pipeline alone (decoded, shuffled, augmented)."""
    iterator = iter(data.training_dataset(filenames, batch_size))
    for _ in range(batches):  # warm-up: fills the cache and the shuffle buffer
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def evaluation_seconds(filenames, batch_size):
    """Seconds for one evaluation pass over filenames after a first (warm-up) pass,
    and the number of images."""
    count = data.count_records(filenames)
    dataset = data.evaluation_dataset(filenames, batch_size, count)
    predict = evaluator.make_predict(Cifar10Model())
    times = []
    for _ in range(2):
        start = time.perf_counter()
        for images, labels in dataset:
            predict(images).numpy()
        times.append(time.perf_counter() - start)
    return times[-1], count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", help="CIFAR-10 data folder; default: random records in a temporary folder.")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--windows", type=int, default=7, help="Timed windows per trainer.")
    parser.add_argument("--window_steps", type=int, default=40, help="Steps per window.")
    parser.add_argument("--eval_batch_size", type=int, default=1000)
    args = parser.parse_args()

    data_dir = args.data_dir or write_synthetic_data(tempfile.mkdtemp(prefix="cifar10_benchmark_"))
    train_files, test_files = data.data_files(data_dir), data.data_files(data_dir, "test")
    mixed = trainer.compute_dtype(use_fp16=True)
    default = trainer.compute_dtype(TrainConfig.use_fp16)
    baseline = "Keras model.fit, plain tf.data"
    trainers = {
        f"ours, float32{' (default)' if default == tf.float32 else ''}":
            OurTrainer(data_dir, args.batch_size, tf.float32),
        f"ours, {mixed.name} (--use_fp16){' (default)' if default == mixed else ''}":
            OurTrainer(data_dir, args.batch_size, mixed),
        baseline: KerasTrainer(keras_baseline.plain_dataset(train_files, args.batch_size)),
        "Keras model.fit, our input pipeline": KerasTrainer(data.training_dataset(train_files, args.batch_size)),
    }
    for runner in trainers.values():  # warm-up: tracing, caches, shuffle buffers
        runner.seconds_per_step(args.window_steps)
    times = {name: [] for name in trainers}
    for _ in range(args.windows):
        for name, runner in trainers.items():
            times[name].append(runner.seconds_per_step(args.window_steps))
    step_seconds = {name: statistics.median(values) for name, values in times.items()}
    pipeline = input_pipeline_rate(train_files, args.batch_size, batches=200)
    eval_seconds, eval_images = evaluation_seconds(test_files, args.eval_batch_size)

    keras_rate = args.batch_size / step_seconds[baseline]
    fastest = min(step_seconds.values())
    print(f"\nCIFAR-10 benchmark: batch {args.batch_size}, {'data in ' + args.data_dir if args.data_dir else 'random records'}, "
          f"{args.windows} windows of {args.window_steps} steps, medians\n")
    print(f"{'what':50s} {'examples/sec':>13s} {'sec/batch':>10s} {'vs ' + baseline:>34s}")
    for name, seconds in step_seconds.items():
        rate = args.batch_size / seconds
        print(f"{'training: ' + name:50s} {rate:13.1f} {seconds:10.4f} {rate / keras_rate:33.2f}x")
    print(f"{'input pipeline alone':50s} {pipeline:13.1f} {'':10s} "
          f"{pipeline * fastest / args.batch_size:9.1f}x the fastest step")
    print(f"{f'evaluation, {eval_images} images':50s} {eval_images / eval_seconds:13.1f} {'':10s} "
          f"{eval_seconds:9.2f} s a pass")


if __name__ == "__main__":
    main()
