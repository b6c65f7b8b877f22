"""Resuming: from the newest checkpoint that loads, on the same schedule whatever the
global batch, with the run's own recipe, and never from a folder TensorFlow would glob."""
import dataclasses
import hashlib
import os
import re

import pytest
import tensorflow as tf

import cifar10_eval
import cifar10_export
import cifar10_multi_gpu_train
import cifar10_train
from cifar10 import checkpoints, config
from cifar10.config import Recipe
from conftest import SMALL_BATCH_LEARNING_RATE, STEP_LINE, evaluate, logged_steps, run, train

# 500 stripe records: 4 epochs are 2,000 examples, 200 steps of 10.
TINY_RECIPE = Recipe("tiny", epochs=4, learning_rate=0.03, momentum=0.9, warmup_epochs=1)


def train_quietly(capsys, data_dir, train_dir, *flags, main=None):
    """train() without histogram summaries; returns stdout."""
    return train(capsys, data_dir, train_dir, "--save_summaries_steps=0", *flags, main=main)


def folder_digest(folder):
    """Names and contents of every file under folder: equal digests, nothing changed."""
    digest = hashlib.sha256()
    for root, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            path = os.path.join(root, name)
            digest.update(path.encode() + open(path, "rb").read())
    return digest.hexdigest()


def damage(path):
    """Flip one byte in every 1,000 of a checkpoint's data file: every large tensor, the
    weights and their averages among them, fails its checksum."""
    with open(path + ".data-00000-of-00001", "r+b") as f:
        data = bytearray(f.read())
        data[::1000] = bytes(b ^ 0xFF for b in data[::1000])
        f.seek(0)
        f.write(data)


@pytest.fixture
def five_checkpoints(capsys, stripe_data, tmp_path):
    """A train_dir with checkpoints at steps 10, 20, 30, 40 and 50."""
    train_dir = tmp_path / "train"
    train_quietly(capsys, stripe_data, train_dir, "--max_steps=50", "--batch_size=8", SMALL_BATCH_LEARNING_RATE,
                  "--save_checkpoint_steps=10")
    return train_dir


def test_a_missing_latest_checkpoint_resumes_from_the_newest_that_loads(capsys, stripe_data, tmp_path,
                                                                        five_checkpoints):
    train_dir = five_checkpoints
    for name in os.listdir(train_dir):
        if name.startswith("model.ckpt-50."):
            os.rename(train_dir / name, tmp_path / name)  # moved away; the state file still names it

    status, out, err = evaluate(capsys, stripe_data, train_dir, tmp_path)
    assert status == 0, err
    assert f"skipped {train_dir}/model.ckpt-50: its files are missing" in out
    assert re.search(r"\(accuracy: \d+/200 at step 40\)", out), out

    out = train_quietly(capsys, stripe_data, train_dir, "--max_steps=60", "--batch_size=8", SMALL_BATCH_LEARNING_RATE,
                        "--save_checkpoint_steps=10", "--log_frequency=1")
    assert f"cannot resume from {train_dir}/model.ckpt-50: its files are missing" in out
    assert f"resuming from {train_dir}/model.ckpt-40 at step 40 of 60" in out
    assert logged_steps(out) == list(range(41, 61))
    # Retention counts only checkpoints that load: five kept, the oldest pruned.
    assert [checkpoints.step_of(p) for p in checkpoints.listed(str(train_dir))] == [60, 50, 40, 30, 20]


def test_a_damaged_latest_checkpoint_is_skipped_and_kept_aside(capsys, stripe_data, tmp_path, five_checkpoints):
    train_dir = five_checkpoints
    damage(str(train_dir / "model.ckpt-50"))
    damaged_bytes = open(train_dir / "model.ckpt-50.data-00000-of-00001", "rb").read()

    status, out, err = evaluate(capsys, stripe_data, train_dir, tmp_path)
    assert status == 0, err
    assert re.search(rf"skipped {train_dir}/model.ckpt-50: it is damaged: .", out), out
    assert re.search(r"\(accuracy: \d+/200 at step 40\)", out), out

    out = train_quietly(capsys, stripe_data, train_dir, "--max_steps=50", "--batch_size=8", SMALL_BATCH_LEARNING_RATE,
                        "--save_checkpoint_steps=10")
    assert re.search(rf"cannot resume from {train_dir}/model.ckpt-50: it is damaged: .", out), out
    assert f"kept {train_dir}/model.ckpt-50 as {train_dir}/model.ckpt-50.damaged" in out
    assert f"resuming from {train_dir}/model.ckpt-40 at step 40 of 50" in out
    assert open(train_dir / "model.ckpt-50.damaged.data-00000-of-00001", "rb").read() == damaged_bytes
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("model.ckpt-50")  # written anew, and loads
    status, out, err = evaluate(capsys, stripe_data, train_dir, tmp_path)
    assert status == 0 and re.search(r"\(accuracy: \d+/200 at step 50\)", out) and "skipped" not in out, out + err


def test_when_no_checkpoint_loads_the_trainer_and_evaluator_stop_and_change_nothing(capsys, stripe_data, tmp_path,
                                                                                   five_checkpoints):
    train_dir = five_checkpoints
    for step in (10, 20, 30, 40, 50):
        damage(str(train_dir / f"model.ckpt-{step}"))
    before = folder_digest(train_dir)

    status, out, err = run(capsys, cifar10_train.main, f"--data_dir={stripe_data}", f"--train_dir={train_dir}",
                           "--max_steps=60", "--batch_size=8")
    assert status == 1 and "Traceback" not in err
    assert f"error: {train_dir}/model.ckpt-50 is the latest checkpoint in --train_dir={train_dir}, but it cannot " \
           "be loaded, nor can any older one" in err
    assert "Nothing was changed" in err and f"{train_dir}/model.ckpt-10: it is damaged" in err
    assert folder_digest(train_dir) == before

    status, out, err = evaluate(capsys, stripe_data, train_dir, tmp_path)
    assert status == 1 and f"{train_dir}/model.ckpt-50 is the latest checkpoint in --checkpoint_dir" in err
    assert folder_digest(train_dir) == before


@pytest.mark.parametrize("main, flag", [
    (cifar10_train.main, "--train_dir"),
    (cifar10_eval.main, "--checkpoint_dir"),
    (cifar10_eval.main, "--eval_dir"),
    (cifar10_export.main, "--export_dir"),
    (cifar10_export.main, "--checkpoint_dir"),
])
def test_a_folder_with_glob_characters_is_refused_before_anything_runs(capsys, stripe_data, tmp_path, main, flag):
    folder = tmp_path / "run[1]"
    data_flag = [] if main is cifar10_export.main else [f"--data_dir={stripe_data}"]
    status, out, err = run(capsys, main, *data_flag, f"{flag}={folder}")
    assert status == 1 and "Traceback" not in err
    assert f"error: {flag}={folder} contains '['" in err
    assert not folder.exists()


def test_a_resumed_run_continues_the_schedule_by_epochs_with_more_towers(capsys, monkeypatch, stripe_data, tmp_path):
    monkeypatch.setitem(config.RECIPES, "tiny", TINY_RECIPE)
    train_dir = tmp_path / "train"
    out = train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", "--batch_size=10", "--max_steps=100")
    assert "at step 0 of 100 (tiny recipe" in out
    # Two towers of 10: 20 examples a step, so the 1,000 examples left take 50 steps.
    out = train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", "--batch_size=10", "--num_gpus=2",
                "--log_frequency=50", main=cifar10_multi_gpu_train.main)
    assert f"resuming from {train_dir}/model.ckpt-100 at step 100 of 150 (tiny recipe" in out
    assert logged_steps(out) == [150]
    reader = tf.train.load_checkpoint(str(train_dir))
    assert reader.get_tensor("examples_seen/.ATTRIBUTES/VARIABLE_VALUE") == 2000
    # A smaller batch after the recipe's last epoch trains nothing more: the run is done.
    out = train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", "--batch_size=5")
    assert "at step 150 of 150" in out and not STEP_LINE.search(out)


def test_a_recipes_batch_is_the_default_and_a_run_resumes_with_another(capsys, monkeypatch, stripe_data, tmp_path):
    monkeypatch.setitem(config.RECIPES, "tiny", dataclasses.replace(TINY_RECIPE, batch_size=20))
    train_dir = tmp_path / "train"
    out = train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", "--max_steps=3")
    assert "1 replica(s) of batch 20," in out
    state = checkpoints.TrainState()
    state.restore(tf.train.latest_checkpoint(str(train_dir)))
    assert int(state.examples_seen.numpy()) == 60 and "batch_size" not in state.description.fields["recipe_values"]
    # The batch is not one of the recipe's values compared on resuming: another one continues.
    out = train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", "--batch_size=10", "--max_steps=5")
    assert f"resuming from {train_dir}/model.ckpt-3 at step 3 of 5" in out and "1 replica(s) of batch 10," in out
    state.restore(tf.train.latest_checkpoint(str(train_dir)))
    assert int(state.examples_seen.numpy()) == 80


def test_resuming_with_another_recipe_is_refused_and_says_what_changed(capsys, monkeypatch, stripe_data, tmp_path):
    monkeypatch.setitem(config.RECIPES, "tiny", TINY_RECIPE)
    train_dir = tmp_path / "train"
    train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", "--batch_size=10", "--max_steps=10")
    before = folder_digest(train_dir)
    status, out, err = run(capsys, cifar10_train.main, f"--data_dir={stripe_data}", f"--train_dir={train_dir}",
                           "--recipe=fast", "--batch_size=10", "--max_steps=20")
    assert status == 1 and "Traceback" not in err
    assert f"error: {train_dir}/model.ckpt-10 was trained with --recipe=tiny" in err
    assert "recipe: 'tiny' -> 'fast'" in err and "epochs: 4 -> 110" in err
    assert "pass --recipe=tiny to resume it, or a new --train_dir" in err
    assert folder_digest(train_dir) == before


def test_the_checkpoint_describes_its_run(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    train_quietly(capsys, stripe_data, train_dir, "--recipe=fast", "--batch_size=10", "--max_steps=3", "--use_fp16=false")
    state = checkpoints.TrainState()
    assert state.restore(tf.train.latest_checkpoint(str(train_dir))) == checkpoints.FORMAT_VERSION
    fields = state.description.fields
    assert fields["format"] == checkpoints.FORMAT_VERSION and fields["recipe"] == "fast"
    assert fields["recipe_values"]["epochs"] == 110 and fields["compute_dtype"] == "float32"
    assert int(state.examples_seen.numpy()) == 30 and int(state.step.numpy()) == 3


def test_a_checkpoint_of_the_first_format_resumes(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    old = checkpoints.TrainState()
    old.step.assign(7)
    manager = tf.train.CheckpointManager(old.checkpoint(format_version=1), str(train_dir), max_to_keep=5,
                                         checkpoint_name=checkpoints.CHECKPOINT_NAME)
    manager.save(checkpoint_number=7)
    out = train_quietly(capsys, stripe_data, train_dir, "--batch_size=10", "--max_steps=9", "--log_frequency=1")
    assert f"{train_dir}/model.ckpt-7 predates the checkpoint's description of its run: taking its 7 steps as " \
           "10 examples each" in out
    assert f"resuming from {train_dir}/model.ckpt-7 at step 7 of 9" in out
    reader = tf.train.load_checkpoint(str(train_dir))
    assert reader.get_tensor("examples_seen/.ATTRIBUTES/VARIABLE_VALUE") == 90
