"""Distillation (Hinton et al., 2015): training targets that mix each record's label with
a teacher's predictions for it.

The teacher is a checkpoint of another run (--teacher_dir). Before training, its moving
averages, which the evaluator reads, predict every training record once: the mean of the
softmax probabilities over config.TEACHER_VIEWS views (cifar10_eval.py --views=10). The
training pipeline then carries each record's predictions with it (data.training_dataset).
A run's checkpoints record the teacher checkpoint's path, and a resumed run predicts
with the same checkpoint again.
"""
import datetime
import os
import time

import numpy as np
import tensorflow as tf

from cifar10 import checkpoints, data, evaluator
from cifar10.config import TEACHER_VIEWS
from cifar10.errors import Cifar10Error
from cifar10.model import Cifar10Model

TEACHER_BATCH = 1000  # images the teacher sees at once, views included, as the evaluator's default


def find_teacher(teacher_dir, saved=None):
    """The path of the teacher checkpoint in teacher_dir (--teacher_dir). A new run's
    (saved None) is the newest checkpoint there that loads; a resumed run's is the one its
    checkpoints record (saved, a path), looked for by name in teacher_dir, so that either
    folder can move. Raises Cifar10Error, naming --teacher_dir, when it does not load."""
    model = Cifar10Model()
    if saved is None:
        path, _, skipped = checkpoints.newest_loadable(teacher_dir, lambda p: checkpoints.restore_averages(model, p))
        checkpoints.say_skipped(skipped)
        if path is None:
            raise checkpoints.none_loads_error(teacher_dir, "--teacher_dir", skipped)
        return path
    path = os.path.join(teacher_dir, os.path.basename(saved))
    try:
        checkpoints.restore_averages(model, path)
    except checkpoints.LOAD_ERRORS as e:
        raise Cifar10Error(f"This run's teacher was {saved}, but {path} cannot be loaded: "
                           f"{checkpoints.why_not_loaded(e)}. A resumed run keeps its teacher: pass the "
                           f"--teacher_dir that holds {os.path.basename(saved)}, or a new --train_dir to start "
                           "another run. Nothing was changed.") from None
    return path


def teacher_probabilities(checkpoint_path, filenames, records):
    """The teacher's predictions for the first records records of filenames (checked
    training files), in file order: float32 [records, 10], each row the mean softmax
    probabilities of checkpoint_path's moving averages over TEACHER_VIEWS views of the
    record. Prints what it does, how long it took, and the teacher's precision @ 1 on
    these records."""
    model = Cifar10Model()
    checkpoints.restore_averages(model, checkpoint_path)
    predict = tf.function(lambda views: evaluator.mean_probabilities(model, views))
    dataset = data.evaluation_dataset(filenames, TEACHER_BATCH // TEACHER_VIEWS, records, TEACHER_VIEWS)
    print(f"{_now()}: predicting the {records} training records with the teacher, {checkpoint_path} "
          f"({TEACHER_VIEWS} views of each)", flush=True)
    started = time.monotonic()
    predictions, labels = [], []
    for views, batch_labels in dataset:
        predictions.append(predict(views).numpy())
        labels.append(batch_labels.numpy())
    predictions, labels = np.concatenate(predictions), np.concatenate(labels)
    right = int(np.sum(predictions.argmax(axis=1) == labels))
    print(f"{_now()}: the teacher's predictions took {time.monotonic() - started:.0f} s; its precision @ 1 on "
          f"these training records, {TEACHER_VIEWS} views: {right / records:.3f} ({right}/{records})", flush=True)
    return predictions


def _now():
    return datetime.datetime.now()
