"""Bad input: a one-paragraph message naming the file or flag and the fix, exit status
1, no traceback, and nothing lost."""
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import tensorflow as tf

import cifar10_eval
import cifar10_train
from cifar10 import data
from conftest import REPO, evaluate, records_bytes, run


def assert_clear_error(status, err, *fragments):
    assert status == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one paragraph
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture
def data_dir(stripe_data, tmp_path):
    """A private copy of the stripe data, to damage."""
    return shutil.copytree(stripe_data, tmp_path / "data")


def batch_path(data_dir, name):
    return os.path.join(data_dir, data.BATCHES_DIR, name)


def try_training(capsys, data_dir, train_dir, *flags):
    """(exit status, stdout, stderr) of a small training run."""
    return run(capsys, cifar10_train.main, f"--data_dir={data_dir}", f"--train_dir={train_dir}",
               "--batch_size=8", "--save_summaries_steps=0", *flags)


def test_a_truncated_data_file_from_the_command_line(data_dir, tmp_path):
    path = batch_path(data_dir, "data_batch_2.bin")
    os.truncate(path, os.path.getsize(path) - 100)
    command = [sys.executable, str(REPO / "cifar10_train.py"), f"--data_dir={data_dir}",
               f"--train_dir={tmp_path / 'train'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"error: {path} holds 307200 bytes, not a whole number of 3073-byte records" in result.stderr
    assert "Traceback" not in result.stderr
    verbose = subprocess.run(command + ["--verbose"], capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr  # --verbose shows where


def test_an_empty_data_file(capsys, data_dir, tmp_path):
    path = batch_path(data_dir, "data_batch_4.bin")
    open(path, "w").close()
    assert_clear_error(*try_training(capsys, data_dir, tmp_path / "train")[::2], f"{path} is empty", "Delete")


def test_a_label_outside_0_to_9(capsys, data_dir, tmp_path):
    path = batch_path(data_dir, "data_batch_3.bin")
    with open(path, "r+b") as f:
        f.seek(7 * data.RECORD_BYTES)
        f.write(bytes([17]))
    assert_clear_error(*try_training(capsys, data_dir, tmp_path / "train")[::2], path, "record 7", "has label 17")


@pytest.mark.parametrize("name", ["data_batch_5.bin", "test_batch.bin"])
def test_a_missing_batch_file(capsys, data_dir, tmp_path, name):
    os.remove(batch_path(data_dir, name))
    if name == "test_batch.bin":
        status, _, err = evaluate(capsys, data_dir, tmp_path, tmp_path)
    else:
        status, _, err = try_training(capsys, data_dir, tmp_path / "train")
    assert_clear_error(status, err, f"{batch_path(data_dir, name)} is missing")


def test_an_archive_that_is_not_gzip_tar(capsys, tmp_path):
    archive = tmp_path / "data" / data.ARCHIVE_NAME
    archive.parent.mkdir()
    archive.write_bytes(b"<html>Proxy error</html>")
    status, _, err = try_training(capsys, archive.parent, tmp_path / "train")
    assert_clear_error(status, err, f"{archive} is not a valid gzip tar archive", f"Delete {archive}")
    assert os.listdir(archive.parent) == [data.ARCHIVE_NAME]


def test_an_archive_without_the_batches(capsys, tmp_path):
    archive = tmp_path / "data" / data.ARCHIVE_NAME
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        payload = tmp_path / "test_batch.bin"
        payload.write_bytes(records_bytes([1], np.zeros([1, 32, 32, 3], np.uint8)))
        tar.add(payload, arcname=f"{data.BATCHES_DIR}/test_batch.bin")
    status, _, err = try_training(capsys, archive.parent, tmp_path / "train")
    assert_clear_error(status, err, f"{archive} lacks cifar-10-batches-bin/data_batch_1.bin")
    assert not os.path.exists(archive.parent / data.BATCHES_DIR)


def test_no_data_and_no_network(capsys, tmp_path):
    url = "http://127.0.0.1:9/cifar-10-binary.tar.gz"  # the discard port: nothing listens
    status, _, err = try_training(capsys, tmp_path / "data", tmp_path / "train", f"--data_url={url}")
    assert_clear_error(status, err, f"Could not download {url}", f"put it in {tmp_path / 'data'}")
    assert os.listdir(tmp_path / "data") == []  # no partial archive to mistake for a whole one


def test_evaluating_a_folder_without_checkpoints(capsys, stripe_data, tmp_path):
    status, _, err = evaluate(capsys, stripe_data, tmp_path / "empty", tmp_path)
    assert_clear_error(status, err, f"No checkpoint found in --checkpoint_dir={tmp_path / 'empty'}")


def write_checkpoint_of_another_shape(train_dir):
    """A checkpoint in the trainers' layout whose conv1 has 32 filters, not 64."""
    other = tf.Module()
    other.conv1 = tf.Module()
    other.conv1.weights = tf.Variable(tf.zeros([5, 5, 3, 32]))
    other.conv1.biases = tf.Variable(tf.zeros([32]))
    checkpoint = tf.train.Checkpoint(step=tf.Variable(7, dtype=tf.int64), model=other, averages=other)
    tf.train.CheckpointManager(checkpoint, str(train_dir), max_to_keep=5, checkpoint_name="model.ckpt").save(7)


def test_a_checkpoint_of_another_shape_is_refused_and_kept(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    write_checkpoint_of_another_shape(train_dir)
    before = {name: (train_dir / name).read_bytes() for name in os.listdir(train_dir)}

    status, _, err = evaluate(capsys, stripe_data, train_dir, tmp_path)
    assert_clear_error(status, err, f"{train_dir}/model.ckpt-7: it does not hold this model's variables in their "
                                    "shapes")
    status, _, err = try_training(capsys, stripe_data, train_dir, "--max_steps=20")
    assert_clear_error(status, err, f"{train_dir}/model.ckpt-7", "shapes", "Nothing was changed",
                       "Pass a new --train_dir")

    assert {name: (train_dir / name).read_bytes() for name in os.listdir(train_dir)} == before


def test_a_train_dir_that_cannot_be_written(capsys, stripe_data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    status, _, err = try_training(capsys, stripe_data, blocker / "train")
    assert_clear_error(status, err, f"Cannot write to --train_dir={blocker / 'train'}")


@pytest.mark.parametrize("main, flag, complaint", [
    (cifar10_train.main, "--batch_size=0", "--batch_size=0: it must be at least 1"),
    (cifar10_train.main, "--max_steps=-5", "--max_steps=-5: it must be 0 or more"),
    (cifar10_train.main, "--log_frequency=0", "--log_frequency=0: it must be at least 1"),
    (cifar10_eval.main, "--num_examples=201", "--num_examples=201, but --eval_data=test has only 200 records"),
    (cifar10_eval.main, "--batch_size=0", "--batch_size=0: it must be at least 1"),
    (cifar10_eval.main, "--eval_interval_secs=inf", "--eval_interval_secs=inf: it must be a positive number"),
    (cifar10_eval.main, "--eval_interval_secs=0", "--eval_interval_secs=0.0: it must be a positive number"),
])
def test_flags_out_of_range(capsys, stripe_data, tmp_path, main, flag, complaint):
    dirs = ([f"--checkpoint_dir={tmp_path}", f"--eval_dir={tmp_path}", "--run_once"] if main is cifar10_eval.main
            else [f"--train_dir={tmp_path}"])
    status, _, err = run(capsys, main, f"--data_dir={stripe_data}", flag, *dirs)
    assert_clear_error(status, err, complaint)
