"""The GPU's mixed-precision path on the CPU: float16 compute, dynamic loss scaling and
the LRN in float32, through the test switch trainer.FLOAT16_ON_CPU, on one device and on
two towers (two logical CPUs)."""
import math
import re

import pytest
import tensorflow as tf

import cifar10_multi_gpu_train
from cifar10 import checkpoints, config, trainer
from cifar10.config import Recipe
from conftest import STEP_LINE, evaluate, train

# 500 stripe records, 20 examples a step: 5 epochs are 125 steps.
RECIPE = Recipe("short_float16", epochs=5, learning_rate=0.01, momentum=0.9, warmup_epochs=1)
BATCH = 20
STEPS = 125
GROWTH_STEPS = 25


def train_in_float16(capsys, monkeypatch, data_dir, train_dir, towers, initial_scale, *flags):
    """Train RECIPE in float16 on `towers` logical CPUs from loss scale initial_scale;
    returns the log and the final checkpoint's loss scale and good steps."""
    monkeypatch.setenv(trainer.FLOAT16_ON_CPU, "1")
    monkeypatch.setitem(config.RECIPES, RECIPE.name, RECIPE)
    monkeypatch.setattr(checkpoints, "INITIAL_LOSS_SCALE", initial_scale)
    monkeypatch.setattr(trainer, "LOSS_SCALE_GROWTH_STEPS", GROWTH_STEPS)  # growth seen within the run
    out = train(capsys, data_dir, train_dir, f"--num_gpus={towers}", f"--batch_size={BATCH // towers}",
                f"--recipe={RECIPE.name}", "--use_fp16", "--save_summaries_steps=0", *flags,
                main=cifar10_multi_gpu_train.main)
    assert "float16 compute" in out and f"{towers} replica(s)" in out
    reader = tf.train.load_checkpoint(str(train_dir))
    return (out, float(reader.get_tensor("loss_scale/.ATTRIBUTES/VARIABLE_VALUE")),
            int(reader.get_tensor("good_steps/.ATTRIBUTES/VARIABLE_VALUE")))


@pytest.mark.parametrize("towers", [1, 2])
def test_float16_with_loss_scaling_learns_and_the_scale_grows_as_designed(capsys, monkeypatch, stripe_data,
                                                                        tmp_path, towers):
    out, scale, good_steps = train_in_float16(capsys, monkeypatch, stripe_data, tmp_path / "train", towers, 1.0,
                                              "--log_frequency=25", "--seed=1")
    losses = [float(line[2]) for line in STEP_LINE.findall(out)]
    assert [int(line[1]) for line in STEP_LINE.findall(out)][-1] == STEPS and losses[-1] < losses[0] - 1, out
    # No step overflowed: the scale doubled after every GROWTH_STEPS good steps.
    assert (scale, good_steps) == (2.0 ** (STEPS // GROWTH_STEPS), STEPS % GROWTH_STEPS)
    status, eval_out, err = evaluate(capsys, stripe_data, tmp_path / "train", tmp_path)
    assert status == 0 and float(re.search(r"precision @ 1 = ([\d.]+)", eval_out).group(1)) >= 0.9, eval_out + err


@pytest.mark.parametrize("towers", [1, 2])
def test_float16_steps_that_overflow_are_skipped_and_halve_the_scale(capsys, monkeypatch, stripe_data, tmp_path,
                                                                     towers):
    too_large = 2.0 ** 24  # the scaled gradients overflow float16 (at most 65,504) at once
    out, scale, good_steps = train_in_float16(capsys, monkeypatch, stripe_data, tmp_path / "train", towers,
                                              too_large, "--max_steps=20", "--log_frequency=10", "--seed=1")
    # Fewer than GROWTH_STEPS steps, so the scale never grew: each step skipped halved it,
    # until it fit (near that edge a later step may overflow too, and is skipped alike).
    halvings = math.log2(too_large / scale)
    assert halvings == int(halvings) and 1 <= halvings <= 15 and good_steps >= 1, (scale, good_steps)
    assert "diverged" not in out
