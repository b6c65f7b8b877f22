"""Validation during training: held-out records never trained on, validated on schedule
with the evaluator's counting, and the best checkpoint kept through retention and resumes."""
import glob
import math
import os
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

import cifar10_export
import cifar10_multi_gpu_train
import cifar10_train
from cifar10 import checkpoints, data
from cifar10.config import TrainConfig
from cifar10.errors import Cifar10Error
from conftest import evaluate, records_bytes, run, succeed, train, write_stripe_data

# groups: step, epoch, precision, correct, count, best precision, best step
VALIDATION_LINE = re.compile(r"^\S+ \S+: validation at step (\d+) \(epoch ([\d.]+)\): precision @ 1 = ([\d.]+) "
                             r"\(accuracy: (\d+)/(\d+) validation records\), best ([\d.]+) at step (\d+)$", re.M)
HELD_OUT = 50  # of the 500 stripe records: the second half of data_batch_5.bin


def validations(out):
    """[(step, epoch, correct, count, best precision, best step)] of a trainer's output."""
    return [(int(step), epoch, int(correct), int(count), float(best), int(best_step))
            for step, epoch, _, correct, count, best, best_step in VALIDATION_LINE.findall(out)]


def best_checkpoints(train_dir):
    """The steps of the checkpoints in train_dir/best/."""
    return [checkpoints.step_of(p) for p in checkpoints.listed(os.path.join(train_dir, checkpoints.BEST_DIR))]


def test_the_held_out_records_are_never_trained_on_and_an_epoch_is_the_others(tmp_path):
    # Three files of 20: the last 25 records (the third file and the end of the second)
    # are held out and alone have label 9.
    rng = np.random.default_rng(3)
    labels = np.concatenate([rng.integers(0, 9, size=35), np.full(25, 9)])
    images = rng.integers(0, 256, size=[60, 32, 32, 3], dtype=np.uint8)
    files = []
    for i in range(3):
        files.append(str(tmp_path / f"data_batch_{i + 1}.bin"))
        pathlib.Path(files[-1]).write_bytes(records_bytes(labels[20 * i:20 * (i + 1)], images[20 * i:20 * (i + 1)]))
    kept_counts = np.bincount(labels[:35], minlength=10)

    assert data.training_records(files, 25) == 35
    # Three epochs, read by one input pipeline and by two (each its shard), yield each
    # record trained on three times, and never a held-out one.
    for pipelines, batch_size in [(1, 5), (2, 1)]:
        counts = np.zeros(10, np.int64)
        for pipeline in range(pipelines):
            context = tf.distribute.InputContext(pipelines, pipeline, pipelines) if pipelines > 1 else None
            shard = len(range(pipeline, 35, pipelines))
            dataset = data.training_dataset(files, batch_size, context, validation_records=25)
            for _, batch_labels in dataset.take(3 * shard // batch_size):
                counts += np.bincount(batch_labels.numpy(), minlength=10)
        np.testing.assert_array_equal(counts, 3 * kept_counts)

    # The validation set is those 25, centrally cropped as a test set, in file order.
    batches = list(data.validation_dataset(files, 10, 25))
    assert [len(b) for _, b in batches] == [10, 10, 5]
    np.testing.assert_array_equal(np.concatenate([b for _, b in batches]), np.full(25, 9))
    np.testing.assert_allclose(np.concatenate([i for i, _ in batches]),
                               data.crop_and_standardize(images[35:]).numpy(), atol=1e-6)

    with pytest.raises(Cifar10Error, match=r"--validation_records=60, but the training files hold 60 records"):
        data.training_records(files, 60)


@pytest.mark.parametrize("flags, complaint", [
    ({"validation_records": -1}, "--validation_records=-1: it must be 0"),
    ({"validate_every_epochs": 0.0}, "--validate_every_epochs=0.0: it must be a positive number"),
    ({"validate_every_epochs": math.inf}, "--validate_every_epochs=inf"),
    ({"validate_every_epochs": math.nan}, "--validate_every_epochs=nan"),
])
def test_validation_flags_out_of_range_are_refused(flags, complaint):
    with pytest.raises(Cifar10Error, match=re.escape(complaint)):
        TrainConfig(**flags)


def test_two_towers_validate_on_schedule_and_the_evaluator_and_exporter_read_the_best(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    out = succeed(capsys, cifar10_multi_gpu_train.main, "--num_gpus=2", f"--data_dir={stripe_data}",
                  f"--train_dir={train_dir}", "--max_steps=30", "--batch_size=25", f"--validation_records={HELD_OUT}",
                  "--validate_every_epochs=1.5", "--save_summaries_steps=0", "--log_frequency=10")

    # 450 records trained on, 50 a step: every 675 examples (steps 14 and 27), and at the end.
    assert "450 training records, 2 replica(s) of batch 25" in out
    found = validations(out)
    assert [(step, epoch, count) for step, epoch, _, count, _, _ in found] == [
        (14, "1.6", HELD_OUT), (27, "3.0", HELD_OUT), (30, "3.3", HELD_OUT)]
    best_correct = max(correct for _, _, correct, _, _, _ in found)
    best_step = next(step for step, _, correct, _, _, _ in found if correct == best_correct)  # the first
    assert found[-1][4:] == (round(best_correct / HELD_OUT, 3), best_step)
    assert best_checkpoints(train_dir) == [best_step]

    scalars = {}
    for events in glob.glob(str(train_dir / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(events):
            for value in event.summary.value:
                if value.tag == "validation/precision_at_1":
                    scalars[event.step] = float(tf.make_ndarray(value.tensor))
    assert scalars == {step: pytest.approx(correct / HELD_OUT) for step, _, correct, _, _, _ in found}

    # The evaluator counts the best checkpoint on the same records (as its test set)
    # exactly as validation did.
    held_out_dir = tmp_path / "held_out" / data.BATCHES_DIR
    held_out_dir.mkdir(parents=True)
    training_file = pathlib.Path(stripe_data, data.BATCHES_DIR, data.TRAIN_FILES[-1]).read_bytes()
    (held_out_dir / data.TEST_FILE).write_bytes(training_file[-HELD_OUT * data.RECORD_BYTES:])
    status, eval_out, err = evaluate(capsys, held_out_dir.parent, train_dir / checkpoints.BEST_DIR, tmp_path)
    assert status == 0, eval_out + err
    assert f"(accuracy: {best_correct}/{HELD_OUT} at step {best_step})" in eval_out

    succeed(capsys, cifar10_export.main, f"--checkpoint_dir={train_dir / checkpoints.BEST_DIR}",
            f"--export_dir={tmp_path / 'models'}")
    assert os.listdir(tmp_path / "models") == [str(best_step)]


def test_the_best_checkpoint_survives_retention_and_resumes_compare_against_it(capsys, tmp_path):
    data_dir = write_stripe_data(tmp_path / "data", test_records=1)
    batch_file = pathlib.Path(data_dir, data.BATCHES_DIR, data.TRAIN_FILES[-1])
    original = np.frombuffer(batch_file.read_bytes(), np.uint8).reshape(-1, data.RECORD_BYTES)

    def label_held_out(shift):
        """Rewrite the held-out records' labels as (true label + shift) mod 10. Shifted by
        1, a model right on a fraction p of them is right on at most 1 - p: with p above
        a half, a validation on true labels beats any on shifted ones."""
        records = original.copy()
        records[-HELD_OUT:, 0] = (records[-HELD_OUT:, 0] + shift) % data.NUM_CLASSES
        batch_file.write_bytes(records.tobytes())

    train_dir = tmp_path / "train"
    flags = ["--batch_size=50", f"--validation_records={HELD_OUT}", "--validate_every_epochs=100",
             "--save_summaries_steps=0", "--log_frequency=100"]
    label_held_out(1)
    (_, _, worse, _, _, _), = validations(train(capsys, data_dir, train_dir, "--max_steps=27", *flags))
    assert best_checkpoints(train_dir) == [27]

    label_held_out(0)  # a better validation replaces the best
    out = train(capsys, data_dir, train_dir, "--max_steps=36", *flags)
    assert f"goes to {train_dir / checkpoints.BEST_DIR} (so far {worse / HELD_OUT:.3f} at step 27)" in out
    (_, _, better, _, best, best_step), = validations(out)
    assert better > worse and (best, best_step) == (round(better / HELD_OUT, 3), 36)
    assert best_checkpoints(train_dir) == [36]
    best_dir = train_dir / checkpoints.BEST_DIR
    best_files = {name: (best_dir / name).read_bytes() for name in os.listdir(best_dir)}

    label_held_out(1)  # a worse one keeps it, through more saves than the run's retention keeps
    out = train(capsys, data_dir, train_dir, "--max_steps=63", "--save_checkpoint_steps=5", *flags)
    (step, _, correct, _, best, best_step), = validations(out)
    assert step == 63 and correct < better and (best, best_step) == (round(better / HELD_OUT, 3), 36)
    assert [checkpoints.step_of(p) for p in checkpoints.listed(str(train_dir))] == [63, 60, 55, 50, 45]
    assert {name: (best_dir / name).read_bytes() for name in os.listdir(best_dir)} == best_files

    # Other held-out records would not compare with that best: refused, nothing changed.
    status, out, err = run(capsys, cifar10_train.main, f"--data_dir={data_dir}",
                           f"--train_dir={train_dir}", "--max_steps=70", "--validation_records=40")
    assert status == 1 and "--validation_records=40, but the best checkpoint" in err
    assert "Pass --validation_records=50 to resume this run" in err
    assert [checkpoints.step_of(p) for p in checkpoints.listed(str(train_dir))][0] == 63
    assert {name: (best_dir / name).read_bytes() for name in os.listdir(best_dir)} == best_files
