"""Validation during training, and the checkpoint of the best validation precision.

With --validation_records=N the trainer never reads the last N records of the training
files (cifar10.data.training_dataset). Every --validate_every_epochs epochs, and at the
run's last step, it counts the predictions of the moving averages (the weights the
evaluator reads) on those N records with the evaluator's own counting, prints the
precision @ 1, writes it to TensorBoard as validation/precision_at_1, and saves the
checkpoint into <train_dir>/best/ when it is right on more records than the best so far.
That checkpoint records its validation (cifar10/checkpoints.py), so that a resumed run
goes on comparing against it.

Only the chief counts. With several workers, the others wait for its decision and save
with it, as they take part in every regular save, into their private folders.
"""
import datetime
import fractions
import os

import tensorflow as tf

from cifar10 import checkpoints, data, evaluator
from cifar10.errors import Cifar10Error

# Records the model sees at once, as the evaluator's default --batch_size: the count
# does not depend on it.
BATCH_SIZE = 1000
SCALAR_TAG = "validation/precision_at_1"
# Intervals of epochs are counted exactly in examples: --validate_every_epochs=1.1 of
# 45,000 records is 49,500 examples, not 49500.00000000001 (which would validate late).
MAX_INTERVAL_DENOMINATOR = 10 ** 6


def read_best(best_dir, validation_records):
    """The validation record of the checkpoint in best_dir that its state file names
    ({precision, correct, count, step, epoch, validation_records}), or None when there is none or it does not load (printing why). Raises
    Cifar10Error when it was chosen on another number of held-out records."""
    record = checkpoints.JsonFields()
    path, _, skipped = checkpoints.newest_loadable(
        best_dir, lambda p: tf.train.Checkpoint(**{checkpoints.VALIDATION: record}).read(p).expect_partial()
        .assert_existing_objects_matched(), no_newer_than_state=True)
    for skipped_path, reason in skipped:
        print(f"{_now()}: cannot compare with the best checkpoint {skipped_path}: {reason}; the next validation "
              "replaces it", flush=True)
    if path is None:
        return None
    held_out = record.fields.get("validation_records")
    if held_out != validation_records:
        raise Cifar10Error(
            f"--validation_records={validation_records}, but the best checkpoint {path} was chosen on the last "
            f"{held_out} training records. A run validates on the same records throughout: other records would "
            "not compare with its best, and training would read records it validated on. Pass "
            f"--validation_records={held_out} to resume this run, or move {best_dir} away to choose a best "
            "checkpoint afresh (or pass a new --train_dir). Nothing was changed.")
    return record.fields


class Validator:
    """Counts a run's moving averages on its held-out records and keeps the best checkpoint.

    config: the TrainConfig; state: the run's TrainState, restored; filenames: the
    training files; records_per_epoch: the records trained on (all but the held-out
    ones); global_batch: examples a step; write_dir: where this process writes
    checkpoints (the chief's --train_dir, another worker's private folder); chief:
    whether this process counts, reports and keeps the best so far.
    """

    def __init__(self, config, state, filenames, records_per_epoch, global_batch, write_dir, chief):
        self.validation_records = config.validation_records
        self.records_per_epoch = records_per_epoch
        self.global_batch = global_batch
        self.chief = chief
        # Examples between validations, as a fraction.
        self.interval = (fractions.Fraction(config.validate_every_epochs).limit_denominator(MAX_INTERVAL_DENOMINATOR)
                         * records_per_epoch)
        self.start_step = int(state.step.numpy())
        self.start_examples = int(state.examples_seen.numpy())
        self.dataset = data.validation_dataset(filenames, BATCH_SIZE, config.validation_records)
        self.predict = evaluator.make_predict(state.averages)
        self.record = checkpoints.JsonFields()
        checkpoint = state.checkpoint()
        setattr(checkpoint, checkpoints.VALIDATION, self.record)
        # Its own folder, state file and retention: the run's retention never prunes it,
        # and a new best replaces the old one only once it is complete.
        self.manager = tf.train.CheckpointManager(checkpoint, os.path.join(write_dir, checkpoints.BEST_DIR),
                                                  max_to_keep=1, checkpoint_name=checkpoints.CHECKPOINT_NAME)
        best_dir = os.path.join(config.train_dir, checkpoints.BEST_DIR)
        self.best = read_best(best_dir, config.validation_records)
        if chief:
            so_far = f" (so far {self.best['precision']:.3f} at step {self.best['step']})" if self.best else ""
            print(f"{_now()}: validating on the last {config.validation_records} training records, held out of "
                  f"training, every {config.validate_every_epochs:g} epoch(s) and at the end; the best checkpoint "
                  f"goes to {best_dir}{so_far}", flush=True)

    def due(self, step, last_step):
        """Whether to validate after step: when the examples trained on pass another
        multiple of --validate_every_epochs epochs, and at last_step, the run's end."""
        return step == last_step or self._intervals_done(step) > self._intervals_done(step - 1)

    def _examples_at(self, step):
        """The examples trained on when step is done."""
        return self.start_examples + (step - self.start_step) * self.global_batch

    def _intervals_done(self, step):
        return self._examples_at(step) // self.interval

    def validate(self, step, any_worker=None):
        """Validate the moving averages after step, and save the checkpoint into best/ if
        the chief counted more records right than the best so far. any_worker: for
        several workers, the trainer's agreement (see trainer._make_agreement), through
        which every worker learns the chief's decision and saves with it."""
        improved = self.chief and self._count(step)
        if any_worker is not None:
            improved, = any_worker([improved])
        if improved:
            self.record.fields = self.best or {}
            self.manager.save(checkpoint_number=step)

    def _count(self, step):
        """Count the predictions on the held-out records at step, print the result and
        write it to TensorBoard; returns whether it is the new best."""
        result = evaluator.count_predictions(None, step, self.dataset, self.predict)
        epoch = self._examples_at(step) / self.records_per_epoch
        improved = self.best is None or result.correct > self.best["correct"]  # exact: the same records
        if improved:
            self.best = {"precision": result.precision, "correct": result.correct, "count": result.count,
                         "step": step, "epoch": epoch, "validation_records": self.validation_records}
        print(f"{_now()}: validation at step {step} (epoch {epoch:.1f}): precision @ 1 = {result.precision:.3f} "
              f"(accuracy: {result.correct}/{result.count} validation records), best {self.best['precision']:.3f} "
              f"at step {self.best['step']}", flush=True)
        tf.summary.scalar(SCALAR_TAG, result.precision, step=step)
        return improved


def _now():
    return datetime.datetime.now()
