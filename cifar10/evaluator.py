"""Evaluation: precision @ 1 of a checkpoint's moving-average weights.

Every example of the chosen set is seen exactly once (the last, partial batch
included), so precision = correct / examples, exactly.
"""
import dataclasses
import datetime
import time

import numpy as np
import tensorflow as tf

from cifar10 import data
from cifar10.config import Cifar10Error
from cifar10.model import Cifar10Model


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """One evaluation: confusion[i, j] counts examples of true class i predicted as j."""
    checkpoint: str
    step: int
    confusion: np.ndarray  # int64 [10, 10]

    @property
    def count(self):
        return int(self.confusion.sum())

    @property
    def correct(self):
        return int(np.trace(self.confusion))

    @property
    def precision(self):
        """Precision @ 1: the fraction of examples whose top prediction is right."""
        return self.correct / self.count

    def class_precisions(self):
        """Per class, the fraction of its examples predicted right (nan if it has none)."""
        per_class = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diagonal(self.confusion) / per_class


def restore_averages(model, checkpoint_path):
    """Load the moving-average weights of checkpoint_path into model (a Cifar10Model);
    returns the checkpoint's step. Raises Cifar10Error if they do not fit the model;
    tf.errors.NotFoundError if the checkpoint's files vanished."""
    step = tf.Variable(0, dtype=tf.int64)
    try:
        status = tf.train.Checkpoint(step=step, averages=model).read(checkpoint_path)
        status.assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
        raise Cifar10Error(f"{checkpoint_path} does not hold this model's moving-average weights, or their "
                           f"shapes differ ({str(e).splitlines()[0]}). It was written by another model or "
                           "program: point --checkpoint_dir at a folder written by cifar10_train.py.") from e
    return int(step.numpy())


def make_predict(model):
    """A compiled function: float32 images [B, 24, 24, 3] -> predicted classes int32 [B]."""
    return tf.function(lambda images: tf.argmax(model(images), axis=1, output_type=tf.int32))


def evaluate_checkpoint(checkpoint_path, dataset, model, predict):
    """Evaluate the averages of checkpoint_path on dataset (batches of images, labels)."""
    step = restore_averages(model, checkpoint_path)
    confusion = np.zeros([data.NUM_CLASSES, data.NUM_CLASSES], np.int64)
    for images, labels in dataset:
        np.add.at(confusion, (labels.numpy(), predict(images).numpy()), 1)
    return EvalResult(checkpoint_path, step, confusion)


def evaluate(config):
    """Evaluate the latest checkpoint of config.checkpoint_dir; with config.run_once,
    once (returns the EvalResult), else each new checkpoint as it appears, until
    interrupted. Writes precision @ 1 to TensorBoard in config.eval_dir."""
    data.maybe_download_and_extract(config.data_dir, config.data_url)
    filenames = data.data_files(config.data_dir, config.eval_data)
    available = data.count_records(filenames)
    if config.num_examples > available:
        raise Cifar10Error(f"--num_examples={config.num_examples}, but --eval_data={config.eval_data} has only "
                           f"{available} records in {', '.join(filenames)}. Pass --num_examples={available} "
                           "or fewer.")
    dataset = data.evaluation_dataset(filenames, config.batch_size, config.num_examples)
    model = Cifar10Model()
    predict = make_predict(model)
    writer = tf.summary.create_file_writer(config.eval_dir)
    evaluated = None
    while True:
        latest = tf.train.latest_checkpoint(config.checkpoint_dir)
        if latest is None and config.run_once:
            raise Cifar10Error(f"No checkpoint found in --checkpoint_dir={config.checkpoint_dir}. Train first "
                               "(cifar10_train.py --train_dir=...), or point --checkpoint_dir at the "
                               "trainer's --train_dir.")
        if latest is not None and latest != evaluated:
            try:
                result = evaluate_checkpoint(latest, dataset, model, predict)
            except (tf.errors.NotFoundError, tf.errors.DataLossError) as e:
                # The trainer's retention policy deleted it between listing and loading.
                print(f"{datetime.datetime.now()}: skipped {latest}, which is gone or incomplete "
                      f"({str(e).splitlines()[0]})", flush=True)
            else:
                evaluated = latest
                report(result, writer)
                if config.run_once:
                    return result
        time.sleep(config.eval_interval_secs)


def report(result, writer):
    """Print precision @ 1 and write it to TensorBoard at the checkpoint's step."""
    print(f"{datetime.datetime.now()}: precision @ 1 = {result.precision:.3f} "
          f"({result.correct}/{result.count} at step {result.step})", flush=True)
    with writer.as_default():
        tf.summary.scalar("precision @ 1", result.precision, step=result.step)
    writer.flush()
