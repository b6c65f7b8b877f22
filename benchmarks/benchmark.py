"""How fast the suite trains, reads and evaluates on this machine, side by side with Keras.

    python -m benchmarks.benchmark [--data_dir=/tmp/cifar10_data] [--batch_size=128]

Prints one table. Training rows: this project's compiled step alone, and the trainer as
cifar10_train.py runs it (the loop with its log line, summaries and checks, at the
default flags), each in float32 and in mixed precision (bfloat16 on a CPU, float16 on
a GPU), with the trainer's ratio to the bare step; and the same network as a plain
Keras model.fit (benchmarks/keras_baseline.py), fed by the plain per-example tf.data
pipeline such a user writes, and again fed by this project's pipeline. All are timed
interleaved: window after window, each trainer in turn, so that whatever else the
machine does falls on all of them alike. Figures are medians over the windows after a
warm-up. Then the input pipeline alone, and one evaluation pass. Without --data_dir it
writes random records in the binary format (the speed does not depend on the pixels).
The random records and the trainers' scratch --train_dirs go in a temporary folder,
removed at the end. Not a test: nothing checks its figures; CI runs it only at a
tiny size, in benchmarks/gpu_check.sh's CPU dry run.
"""
import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time

from cifar10 import startup

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
startup.use_onednn()  # the CPU kernels the programs use (TF_ENABLE_ONEDNN_OPTS=0 for TensorFlow's own)

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


class OurStep:
    """This project's compiled training step alone (one device) in the given compute
    dtype, as trainer.build sets it up for cifar10_train.py (in a new --train_dir under
    scratch)."""

    def __init__(self, data_dir, batch_size, dtype, scratch):
        self.training = _build_training(data_dir, batch_size, dtype, scratch)

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


class OurTrainerAsRun:
    """The trainer as cifar10_train.py runs it, with its default flags: trainer.loop, with
    its log line every 10 steps (the host reads the loss), summaries every 100 steps and
    the checks of each step. Each window is one call of the loop, as a run is: a new
    input iterator, the first log interval as warm-up, then steps timed from log line to
    log line, which leaves out the checkpoint the loop writes at its end (a run writes
    one every 10 minutes). Its --train_dir is a new folder under scratch."""

    def __init__(self, data_dir, batch_size, dtype, scratch):
        self.training = _build_training(data_dir, batch_size, dtype, scratch)
        self.log_frequency = self.training.config.log_frequency
        self.log_times = []
        log = self.training.log

        def timed_log(step, loss):
            self.log_times.append(time.perf_counter())
            log(step, loss)
        self.training.log = timed_log

    def seconds_per_step(self, steps):
        if steps % self.log_frequency:
            raise ValueError(f"--window_steps={steps} must be a multiple of the log frequency, "
                             f"{self.log_frequency}")
        step = int(self.training.state.step.numpy())
        self.training.last_step = step + self.log_frequency + steps
        self.log_times.clear()
        with contextlib.redirect_stdout(io.StringIO()):  # the log lines
            trainer.loop(self.training)
        return (self.log_times[-1] - self.log_times[0]) / steps


def _build_training(data_dir, batch_size, dtype, scratch):
    config = TrainConfig(data_dir=data_dir, train_dir=tempfile.mkdtemp(dir=scratch, prefix="train_"),
                         batch_size=batch_size, use_fp16=dtype != tf.float32)
    with contextlib.redirect_stdout(io.StringIO()):  # the start line
        return trainer.build(config, tf.distribute.get_strategy())


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


ROWS = ("step", "trainer", "keras")
PRECISIONS = ("float32", "mixed")


def cpu_kernels():
    """Which kernels TensorFlow computes with on the CPU in this process, from
    TF_ENABLE_ONEDNN_OPTS (see cifar10.startup.use_onednn)."""
    setting = os.environ.get(startup.ONEDNN_VARIABLE)
    if setting is None:
        return "TensorFlow's default for this CPU"
    kernels = "oneDNN" if setting == "1" else "TensorFlow's own (Eigen)"
    return f"{kernels} ({startup.ONEDNN_VARIABLE}={setting})"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", help="CIFAR-10 data folder; default: random records in a temporary folder.")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--windows", type=int, default=7, help="Timed windows per trainer.")
    parser.add_argument("--window_steps", type=int, default=100,
                        help="Steps per window: a multiple of 10 (the log frequency); 100 holds one summary.")
    parser.add_argument("--eval_batch_size", type=int, default=1000)
    parser.add_argument("--rows", default=",".join(ROWS),
                        help="Which training rows, comma-separated: step (our compiled step alone), trainer "
                             "(the trainer as cifar10_train.py runs it), keras (the Keras baselines).")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="Our rows' compute precisions, comma-separated: float32, mixed (--use_fp16).")
    args = parser.parse_args()
    rows, precisions = args.rows.split(","), args.precisions.split(",")
    if not set(rows) <= set(ROWS) or not set(precisions) <= set(PRECISIONS):
        parser.error(f"--rows takes {', '.join(ROWS)}; --precisions takes {', '.join(PRECISIONS)}")

    # The random records and the trainers' --train_dirs: removed, with all they hold, at the end.
    with tempfile.TemporaryDirectory(prefix="cifar10_benchmark_") as scratch:
        measure_and_print(args, rows, precisions, scratch)


def measure_and_print(args, rows, precisions, scratch):
    """Time the training rows (rows, in precisions), the input pipeline and evaluation
    as args asks, writing what they need under scratch, and print the table."""
    data_dir = args.data_dir or write_synthetic_data(os.path.join(scratch, "data"))
    train_files, test_files = data.data_files(data_dir), data.data_files(data_dir, "test")
    default = trainer.compute_dtype(TrainConfig.use_fp16)
    dtypes = {"float32": tf.float32, "mixed": trainer.compute_dtype(use_fp16=True)}
    baseline = "Keras model.fit, plain tf.data"
    trainers, step_of = {}, {}  # step_of: each trainer row's bare-step row
    for precision in precisions:
        dtype = dtypes[precision]
        label = dtype.name + (" (--use_fp16)" if precision == "mixed" else "") + (
            " (default)" if dtype == default else "")
        if "step" in rows:
            trainers[f"our compiled step alone, {label}"] = OurStep(data_dir, args.batch_size, dtype, scratch)
        if "trainer" in rows:
            name = f"the trainer as run by cifar10_train.py, {label}"
            trainers[name] = OurTrainerAsRun(data_dir, args.batch_size, dtype, scratch)
            step_of[name] = f"our compiled step alone, {label}"
    if "keras" in rows:
        trainers[baseline] = KerasTrainer(keras_baseline.plain_dataset(train_files, args.batch_size))
        trainers["Keras model.fit, our input pipeline"] = KerasTrainer(
            data.training_dataset(train_files, args.batch_size))
    for runner in trainers.values():  # warm-up: tracing, caches, shuffle buffers
        runner.seconds_per_step(args.window_steps)
    times = {name: [] for name in trainers}
    for _ in range(args.windows):
        for name, runner in trainers.items():
            times[name].append(runner.seconds_per_step(args.window_steps))
    step_seconds = {name: statistics.median(values) for name, values in times.items()}
    pipeline = input_pipeline_rate(train_files, args.batch_size, batches=200)
    eval_seconds, eval_images = evaluation_seconds(test_files, args.eval_batch_size)

    fastest = min(step_seconds.values())
    table = []  # what, examples/sec, sec/batch, vs the bare step, vs the Keras baseline, note
    for name, seconds in step_seconds.items():
        of_step = f"{step_seconds[step_of[name]] / seconds:.3f}" if step_of.get(name) in step_seconds else ""
        vs_keras = f"{step_seconds[baseline] / seconds:.2f}x" if baseline in step_seconds else ""
        table.append((f"training: {name}", f"{args.batch_size / seconds:.1f}", f"{seconds:.4f}", of_step, vs_keras,
                      ""))
    table.append(("input pipeline alone", f"{pipeline:.1f}", "", "", "",
                  f"{pipeline * fastest / args.batch_size:.1f}x the fastest training row"))
    table.append((f"evaluation, {eval_images} images", f"{eval_images / eval_seconds:.1f}", "", "", "",
                  f"{eval_seconds:.2f} s a pass"))
    print(f"\nCIFAR-10 benchmark: batch {args.batch_size}, "
          f"{'data in ' + args.data_dir if args.data_dir else 'random records'}, {args.windows} windows of "
          f"{args.window_steps} steps, medians; examples/sec counts training examples (one view each); "
          f"CPU kernels: {cpu_kernels()}\n")
    print(f"| what | examples/sec | sec/batch | vs the bare step | vs {baseline} | |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for row in table:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
