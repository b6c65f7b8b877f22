"""Evaluation: precision @ 1 of a checkpoint's moving-average weights.

"Precision @ 1" is the tutorial's name for the accuracy: the fraction of examples whose
top prediction is right. Every example of the chosen set is seen exactly once (the
last, partial batch included), so it is correct / examples, exactly. Per class, the
evaluator reports the recall: the fraction of that class's examples predicted right.
"""
import dataclasses
import datetime
import signal
import time

import numpy as np
import tensorflow as tf

from cifar10 import checkpoints, data, heatmap, startup
from cifar10.errors import Cifar10Error, SignalExit, StopRequests, check_writable_dir
from cifar10.model import Cifar10Model

PROGRESS_SECS = 10.0  # how often an evaluation that takes long says how far it is


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
        """Precision @ 1, the tutorial's name for the accuracy: the fraction of examples
        whose top prediction is right."""
        return self.correct / self.count

    def class_recalls(self):
        """Per class, its recall: the fraction of its examples predicted right, float64
        [10] (nan for a class without examples)."""
        per_class = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diagonal(self.confusion) / per_class


def make_predict(model):
    """A compiled function: float32 images [B, 24, 24, 3] -> predicted classes int32 [B];
    or views of each image [B, V, 24, 24, 3] -> the class of the highest mean softmax
    probability over the V views."""
    @tf.function
    def predict(images):
        if images.shape.rank == 4:
            return tf.argmax(model(images), axis=1, output_type=tf.int32)
        return tf.argmax(mean_probabilities(model, images), axis=1, output_type=tf.int32)
    return predict


def mean_probabilities(model, views):
    """The softmax probabilities of model, float32 [B, 10], averaged over the V views of
    each image: views float32 [B, V, 24, 24, 3]."""
    flat = tf.reshape(views, [-1, *views.shape[2:]])
    probabilities = tf.reshape(tf.nn.softmax(model(flat)), [tf.shape(views)[0], -1, data.NUM_CLASSES])
    return tf.reduce_mean(probabilities, axis=1)


def evaluate_checkpoint(checkpoint_path, dataset, model, predict):
    """Evaluate the averages of checkpoint_path on dataset (batches of images, labels)."""
    return count_predictions(checkpoint_path, checkpoints.restore_averages(model, checkpoint_path), dataset, predict)


def count_predictions(checkpoint_path, step, dataset, predict, records=None, stop=None):
    """The EvalResult of predict on dataset (batches of images, labels) for the weights
    of checkpoint_path, already loaded, at step (checkpoint_path None: weights not read
    from a checkpoint, as the trainer's validation counts its moving averages). Given
    the dataset's number of records, an evaluation that takes long prints its progress
    every PROGRESS_SECS seconds. Given stop (StopRequests), a signal ends it after the
    batch in progress, raising SignalExit."""
    confusion = np.zeros([data.NUM_CLASSES, data.NUM_CLASSES], np.int64)
    started = last_said = time.monotonic()
    for images, labels in dataset:
        np.add.at(confusion, (labels.numpy(), predict(images).numpy()), 1)
        if stop is not None:
            stop.raise_if_requested()
        now = time.monotonic()
        if records and now - last_said >= PROGRESS_SECS:
            counted = int(confusion.sum())
            left = datetime.timedelta(seconds=round((now - started) / counted * (records - counted)))
            print(f"{_now()}: evaluated {counted}/{records} records ({100 * counted / records:.0f}%), ETA {left}",
                  flush=True)
            last_said = now
    return EvalResult(checkpoint_path, step, confusion)


def evaluate(config):
    """Evaluate the newest checkpoint of config.checkpoint_dir that loads; with
    config.run_once, once (returns the EvalResult), else each newer checkpoint as it
    appears, until SIGINT or SIGTERM (raised as SignalExit). Writes precision @ 1 to
    TensorBoard in config.eval_dir."""
    startup.use_device(config.device)  # before TensorFlow's runtime starts
    data.maybe_download_and_extract(config.data_dir, config.data_url)
    filenames = data.data_files(config.data_dir, config.eval_data)
    available = data.count_records(filenames)
    num_examples = available if config.num_examples is None else config.num_examples
    if num_examples > available:
        raise Cifar10Error(f"--num_examples={num_examples}, but --eval_data={config.eval_data} has only "
                           f"{available} records in {', '.join(filenames)}. Pass --num_examples={available} "
                           "or fewer, or leave it out to evaluate them all.")
    # batch_size counts the images the model sees at once, views included.
    records_per_batch = max(1, config.batch_size // config.views)
    dataset = data.evaluation_dataset(filenames, records_per_batch, num_examples, config.views)
    model = Cifar10Model()
    print(f"{_now()}: {startup.device_line('evaluating', model.compute_dtype)}", flush=True)
    predict = make_predict(model)
    check_writable_dir(config.eval_dir, "--eval_dir")
    writer = tf.summary.create_file_writer(config.eval_dir)
    evaluated_step = -1
    tried = set()  # each checkpoint once, whether it loads or not
    waiting_said = False
    try:
        with StopRequests() as stop:
            while True:
                # The trainer names a checkpoint in its state file only once it is complete.
                path, step, skipped = checkpoints.newest_loadable(
                    config.checkpoint_dir, lambda p: checkpoints.restore_averages(model, p),
                    newer_than=evaluated_step, tried=tried, no_newer_than_state=True)
                checkpoints.say_skipped(skipped)
                if path is not None:
                    evaluated_step = step
                    result = count_predictions(path, step, dataset, predict, num_examples, stop)
                    report(result, writer, config.views)
                    if config.run_once:
                        return result
                elif config.run_once:
                    raise checkpoints.none_loads_error(config.checkpoint_dir, "--checkpoint_dir", skipped)
                elif evaluated_step < 0 and not waiting_said:
                    print(f"{_now()}: waiting for a checkpoint in --checkpoint_dir={config.checkpoint_dir} (the "
                          f"trainer's --train_dir), looking every {config.eval_interval_secs:g} s", flush=True)
                    waiting_said = True
                stop.sleep(config.eval_interval_secs)
                stop.raise_if_requested()
    except (KeyboardInterrupt, SignalExit) as e:  # a signal: the way to end the waiting loop
        print(f"{_now()}: evaluator stopped", flush=True)
        raise SignalExit(getattr(e, "signum", signal.SIGINT)) from e


def _now():
    return datetime.datetime.now()


def report(result, writer, views=1):
    """Print precision @ 1 (the accuracy), each class's recall and the confusion matrix;
    write precision @ 1 and the confusion matrix as an image to TensorBoard at the
    checkpoint's step. views: how many views of each image the predictions averaged
    (named when not 1)."""
    of_views = "" if views == 1 else f", {views} views"
    print(f"{datetime.datetime.now()}: precision @ 1 = {result.precision:.3f} "
          f"(accuracy: {result.correct}/{result.count} at step {result.step}{of_views})", flush=True)
    print(format_class_recalls(result), flush=True)
    print(format_confusion(result.confusion), flush=True)
    with writer.as_default():
        tf.summary.scalar("precision @ 1" + of_views, result.precision, step=result.step)
        tf.summary.image("confusion_matrix", heatmap.confusion_heat_map(result.confusion, data.CLASS_NAMES)[None],
                         step=result.step)
    writer.flush()


def format_class_recalls(result):
    """Under a heading, a line '  <class> recall 0.xxx (correct/examples)' per class of an
    EvalResult; 'nan (0/0)' for a class without examples."""
    confusion = result.confusion
    width = max(len(name) for name in data.CLASS_NAMES)
    lines = ["recall of each class (its examples predicted right):"]
    for name, recall, correct, count in zip(data.CLASS_NAMES, result.class_recalls(),
                                            np.diagonal(confusion), confusion.sum(axis=1)):
        lines.append(f"  {name:<{width}} recall {recall:.3f} ({correct}/{count})")
    return "\n".join(lines)


def format_confusion(confusion):
    """The int confusion matrix [10, 10] as a table: a row per true class, a column per
    predicted class, both headed by class names."""
    width = max(max(len(name) for name in data.CLASS_NAMES), len(str(confusion.max())))
    header = " " * width + "".join(f" {name:>{width}}" for name in data.CLASS_NAMES)
    rows = [f"{name:<{width}}" + "".join(f" {count:>{width}}" for count in row)
            for name, row in zip(data.CLASS_NAMES, confusion)]
    return "\n".join(["confusion matrix (rows: true class, columns: predicted class):", header] + rows)
