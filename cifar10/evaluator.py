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
from cifar10.config import Cifar10Error, check_writable_dir
from cifar10.model import Cifar10Model

CONFUSION_CELL_PIXELS = 16  # side of each cell of the confusion matrix image


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
    """A compiled function: float32 images [B, 24, 24, 3] -> predicted classes int32 [B];
    or views of each image [B, V, 24, 24, 3] -> the class of the highest mean softmax
    probability over the V views."""
    @tf.function
    def predict(images):
        if images.shape.rank == 4:
            return tf.argmax(model(images), axis=1, output_type=tf.int32)
        views = tf.reshape(images, [-1, *images.shape[2:]])
        probabilities = tf.reshape(tf.nn.softmax(model(views)), [tf.shape(images)[0], -1, data.NUM_CLASSES])
        return tf.argmax(tf.reduce_mean(probabilities, axis=1), axis=1, output_type=tf.int32)
    return predict


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
    # batch_size counts the images the model sees at once, views included.
    records_per_batch = max(1, config.batch_size // config.views)
    dataset = data.evaluation_dataset(filenames, records_per_batch, config.num_examples, config.views)
    model = Cifar10Model()
    predict = make_predict(model)
    check_writable_dir(config.eval_dir, "--eval_dir")
    writer = tf.summary.create_file_writer(config.eval_dir)
    evaluated = None
    try:
        while True:
            latest = latest_checkpoint(config.checkpoint_dir) if config.run_once else \
                tf.train.latest_checkpoint(config.checkpoint_dir)
            if latest is not None and latest != evaluated:
                evaluated = latest  # each checkpoint once, whether it loads or not
                try:
                    result = evaluate_checkpoint(latest, dataset, model, predict)
                except tf.errors.OpError as e:
                    # Deleted by the trainer's retention policy between listing and loading
                    # (NotFoundError), or damaged (DataLossError and others).
                    print(f"{datetime.datetime.now()}: skipped {latest}, which is gone or incomplete "
                          f"({str(e).splitlines()[0]})", flush=True)
                    if config.run_once and tf.train.latest_checkpoint(config.checkpoint_dir) == latest:
                        raise Cifar10Error(f"{latest} is the latest checkpoint in --checkpoint_dir="
                                           f"{config.checkpoint_dir}, but it cannot be read. Run the "
                                           "trainer again to write a new one.") from e
                    continue  # a newer checkpoint has replaced it: look again at once
                report(result, writer, config.views)
                if config.run_once:
                    return result
            time.sleep(config.eval_interval_secs)
    except KeyboardInterrupt:  # the way to end the waiting loop
        print(f"{datetime.datetime.now()}: evaluator stopped", flush=True)
        return None


def latest_checkpoint(checkpoint_dir):
    """The latest checkpoint's path in checkpoint_dir; raises Cifar10Error if there is none."""
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is None:
        raise Cifar10Error(f"No checkpoint found in --checkpoint_dir={checkpoint_dir}. Train first "
                           "(cifar10_train.py --train_dir=...), or point --checkpoint_dir at the "
                           "trainer's --train_dir.")
    return latest


def report(result, writer, views=1):
    """Print precision @ 1, each class's precision and the confusion matrix; write precision
    @ 1 and the confusion matrix as an image to TensorBoard at the checkpoint's step.
    views: how many views of each image the predictions averaged (named when not 1)."""
    of_views = "" if views == 1 else f", {views} views"
    print(f"{datetime.datetime.now()}: precision @ 1 = {result.precision:.3f} "
          f"({result.correct}/{result.count} at step {result.step}{of_views})", flush=True)
    print(format_class_precisions(result), flush=True)
    print(format_confusion(result.confusion), flush=True)
    with writer.as_default():
        tf.summary.scalar("precision @ 1" + of_views, result.precision, step=result.step)
        tf.summary.image("confusion_matrix", confusion_image(result.confusion), step=result.step)
    writer.flush()


def format_class_precisions(result):
    """Under a heading, a line '  <class> precision 0.xxx (correct/examples)' per class of
    an EvalResult; 'nan (0/0)' for a class without examples."""
    confusion = result.confusion
    width = max(len(name) for name in data.CLASS_NAMES)
    lines = ["precision of each class (its examples predicted right):"]
    for name, precision, correct, count in zip(data.CLASS_NAMES, result.class_precisions(),
                                               np.diagonal(confusion), confusion.sum(axis=1)):
        lines.append(f"  {name:<{width}} precision {precision:.3f} ({correct}/{count})")
    return "\n".join(lines)


def format_confusion(confusion):
    """The int confusion matrix [10, 10] as a table: a row per true class, a column per
    predicted class, both headed by class names."""
    width = max(max(len(name) for name in data.CLASS_NAMES), len(str(confusion.max())))
    header = " " * width + "".join(f" {name:>{width}}" for name in data.CLASS_NAMES)
    rows = [f"{name:<{width}}" + "".join(f" {count:>{width}}" for count in row)
            for name, row in zip(data.CLASS_NAMES, confusion)]
    return "\n".join(["confusion matrix (rows: true class, columns: predicted class):", header] + rows)


def confusion_image(confusion):
    """A heat map of the int confusion matrix [10, 10] for tf.summary.image: float32
    [1, 160, 160, 3] in [0, 1]. Cell (true i, predicted j) is a 16x16 block whose colour
    shows confusion[i, j] / (examples of class i): black 0, through red and yellow, to
    white 1."""
    fractions = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    cells = np.kron(fractions, np.ones([CONFUSION_CELL_PIXELS, CONFUSION_CELL_PIXELS]))
    heat = np.stack([np.clip(3 * cells - channel, 0, 1) for channel in range(3)], axis=-1)
    return heat[None].astype(np.float32)
