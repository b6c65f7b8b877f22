"""Reproducible runs: --seed fixes every random number that training draws, and with
--deterministic two runs of the same command write the same checkpoint."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cifar10 import data
from conftest import REPO

# The long recipe draws every kind of random number: initial weights, shuffling, the
# crop, flip, brightness, contrast and cutout of each image.
RUN_FLAGS = ("--recipe=long", "--max_steps=20", "--batch_size=8", "--save_summaries_steps=0", "--use_fp16=false")
DESCRIPTION_KEY = "description/.ATTRIBUTES/py_state"


def checkpoint_tensors(train_dir):
    """{key: value} of every tensor in the latest checkpoint of train_dir."""
    reader = tf.train.load_checkpoint(str(train_dir))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}


def test_the_same_seed_with_deterministic_ops_writes_the_same_weights_and_another_seed_others(stripe_data, tmp_path):
    # Separate processes: a run in this one would share its TensorFlow state (global seed,
    # op determinism) with the other tests and with the other runs.
    runs = {name: tmp_path / name for name in ("seed_7", "seed_7_again", "seed_8")}
    processes = {name: subprocess.Popen(
        [sys.executable, str(REPO / "cifar10_train.py"), f"--data_dir={stripe_data}", f"--train_dir={train_dir}",
         *RUN_FLAGS, f"--seed={name.split('_')[1]}", "--deterministic"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for name, train_dir in runs.items()}
    for name, process in processes.items():
        out = process.communicate()[0]
        assert process.returncode == 0, out
        assert "(long recipe, seed " in out and ", deterministic ops, float32 compute)" in out

    first, again, other = (checkpoint_tensors(runs[name]) for name in ("seed_7", "seed_7_again", "seed_8"))
    assert int(first["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 20
    assert json.loads(first[DESCRIPTION_KEY])["seed"] == 7
    assert first.keys() == again.keys()
    for key in first:
        np.testing.assert_array_equal(again[key], first[key], err_msg=key)
    weights = [key for key in first if key.startswith(("model/", "averages/")) and "/weights/" in key]
    assert len(weights) == 10
    for key in weights:
        assert not np.array_equal(other[key], first[key]), key


@pytest.fixture
def no_global_seed_after():
    """Leaves TensorFlow without a global seed, as the other tests expect it."""
    yield
    tf.random.set_seed(None)


def test_a_data_seed_gives_the_same_batches_whatever_was_drawn_before(stripe_data, no_global_seed_after):
    filenames = data.data_files(stripe_data)

    def first_batches(seed, draws_before):
        tf.random.set_seed(7)  # as the trainer does with --seed=7
        for _ in range(draws_before):  # each moves on the seed of the next op without one of its own
            tf.random.uniform([1])
        return list(data.training_dataset(filenames, 50, cutout=8, seed=seed).take(3).as_numpy_iterator())

    batches = first_batches((7, 0), draws_before=1)
    for (images, labels), (same_images, same_labels) in zip(batches, first_batches((7, 0), draws_before=2)):
        np.testing.assert_array_equal(same_images, images)
        np.testing.assert_array_equal(same_labels, labels)
    # A run resumed at another step draws its data anew, rather than replay the run's start.
    resumed = first_batches((7, 100), draws_before=1)
    assert not np.array_equal(resumed[0][1], batches[0][1])
    assert not np.array_equal(resumed[0][0], batches[0][0])
