"""Hyperparameter flags: each overrides one value of --recipe, is checked before anything
runs, is recorded in the checkpoint, and a run resumes only with the values it was
trained with."""
import numpy as np
import pytest
import tensorflow as tf

import cifar10_train
from cifar10 import checkpoints, config, trainer
from cifar10.config import TrainConfig
from conftest import run, train
from test_resume import TINY_RECIPE, folder_digest, train_quietly

# 0.6 epochs of the 500 stripe records at 50 a step: the run ends at step 6.
OVERRIDES = ("--epochs=0.6", "--warmup_epochs=0.1", "--learning_rate=0.05", "--nesterov")
OVERRIDE_FLAGS = "--epochs=0.6 --learning_rate=0.05 --nesterov=true --warmup_epochs=0.1"  # in Recipe's order


def test_flags_override_the_recipe_and_a_run_resumes_only_with_them(capsys, monkeypatch, stripe_data, tmp_path):
    monkeypatch.setitem(config.RECIPES, "tiny", TINY_RECIPE)
    train_dir = tmp_path / "train"
    out = train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", *OVERRIDES, "--batch_size=50")
    assert f"starting at step 0 of 6 (tiny recipe with {OVERRIDE_FLAGS}, " in out
    state = checkpoints.TrainState()
    state.restore(tf.train.latest_checkpoint(str(train_dir)))
    values = state.description.fields["recipe_values"]
    assert (values["epochs"], values["warmup_epochs"], values["learning_rate"], values["nesterov"]) == \
        (0.6, 0.1, 0.05, True)
    assert values["momentum"] == TINY_RECIPE.momentum  # not overridden: the recipe's own

    before = folder_digest(train_dir)
    status, out, err = run(capsys, cifar10_train.main, f"--data_dir={stripe_data}", f"--train_dir={train_dir}",
                           "--recipe=tiny", "--learning_rate=0.05", "--batch_size=50")
    assert status == 1 and "Traceback" not in err
    assert f"was trained with --recipe=tiny {OVERRIDE_FLAGS}, and this run's recipe differs (epochs: 0.6 -> 4; " \
           "nesterov: True -> False; warmup_epochs: 0.1 -> 1)" in err
    assert f"pass --recipe=tiny {OVERRIDE_FLAGS} to resume it, or a new --train_dir" in err
    assert folder_digest(train_dir) == before

    out = train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", *OVERRIDES, "--batch_size=50")
    assert f"resuming from {train_dir}/model.ckpt-6 at step 6 of 6 (tiny recipe with {OVERRIDE_FLAGS}, " in out


def test_the_tutorial_staircase_takes_its_decay_from_the_flags():
    recipe = TrainConfig(learning_rate=0.2, num_epochs_per_decay=2, learning_rate_decay_factor=0.5).recipe
    schedule = trainer.learning_rate_schedule(recipe, records_per_epoch=100, global_batch=10)
    rates = [float(schedule(tf.constant(examples, tf.int64))) for examples in (0, 199, 200, 400)]
    assert rates == pytest.approx([0.2, 0.2, 0.1, 0.05])


@pytest.mark.parametrize("flags, message", [
    (["--epochs=10"], "--epochs=10: the tutorial recipe has no schedule over a number of epochs"),
    (["--recipe=fast", "--num_epochs_per_decay=100", "--learning_rate_decay_factor=0.5"],
     "--num_epochs_per_decay=100 --learning_rate_decay_factor=0.5: only the tutorial recipe decays its learning "
     "rate in steps"),
    (["--learning_rate=0"], "--learning_rate=0: it must be a positive finite number."),
    (["--learning_rate=inf"], "--learning_rate=inf: it must be a positive finite number."),
    (["--momentum=1"], "--momentum=1: it must be at least 0 (plain SGD) and below 1."),
    (["--recipe=long", "--epochs=2"], "--epochs=2: it must be finite and more than the epochs of warm-up "
                                      "(--warmup_epochs=2)."),
    (["--label_smoothing=1"], "--label_smoothing=1: it must be at least 0 (none) and below 1."),
    (["--cutout=25"], "--cutout=25: it must be 0 (none) to 24"),
    (["--mixup=-1"], "--mixup=-1: it must be 0 (none) or more, and finite."),
    (["--crop_shift=5"], "--crop_shift=5: it must be 0 (the central crop) to 4 (any 24x24 crop of the 32x32 "
                         "image)."),
    (["--conv_weight_decay=-0.1"], "--conv_weight_decay=-0.1: it must be 0 (none) or more, and finite."),
    (["--num_epochs_per_decay=0"], "--num_epochs_per_decay=0: it must be a positive finite number."),
    (["--learning_rate_decay_factor=1.5"], "--learning_rate_decay_factor=1.5: it must be above 0 and at most 1"),
    (["--moving_average_decay=1"], "--moving_average_decay=1: it must be at least 0 (the averages are the weights) "
                                   "and below 1."),
    (["--swa_epochs=10"], "--swa_epochs=10: the tutorial recipe has no schedule over a number of epochs"),
    (["--recipe=fast", "--swa_epochs=108"], "--swa_epochs=108: it must be 0 (none) or more, and less than the "
                                            "epochs after the warm-up (108)."),
    (["--recipe=fast", "--swa_learning_rate=0.01"], "--swa_learning_rate=0.01: it is the learning rate of the last "
                                                    "--swa_epochs, which are none: pass --swa_epochs too."),
    (["--muon=true", "--muon_layers=conv1,softmax_linear"], "--muon_layers=conv1,softmax_linear: it must name one "
                                                            "or more of conv1, conv2, local3, local4, each once"),
    (["--muon_layers=conv1"], "--muon_layers=conv1: it names the kernels that Muon turns, and Muon is off: pass "
                              "--muon=true too."),
    (["--muon_decoupled_decay=true"], "--muon_decoupled_decay=true: it is the weight decay of the kernels that Muon "
                                      "turns, and Muon is off: pass --muon=true too."),
    (["--deterministic"], "--deterministic needs --seed"),
    (["--seed=-1"], "--seed=-1: use a whole number from 0 to 2147483647."),
], ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_a_value_out_of_range_or_of_the_other_schedule_is_refused_naming_the_flag(capsys, tmp_path, flags, message):
    status, out, err = run(capsys, cifar10_train.main, f"--train_dir={tmp_path / 'train'}", *flags)
    assert status == 1 and "Traceback" not in err
    assert err.startswith(f"error: {message}"), err
    assert not (tmp_path / "train").exists()


def test_a_run_with_mixup_trains_summarizes_and_records_it(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    out = train(capsys, stripe_data, train_dir, "--mixup=0.4", "--batch_size=10", "--max_steps=2",
                "--save_summaries_steps=1")
    assert "(tutorial recipe with --mixup=0.4, " in out
    state = checkpoints.TrainState()
    state.restore(tf.train.latest_checkpoint(str(train_dir)))
    assert state.description.fields["recipe_values"]["mixup"] == 0.4 and int(state.step) == 2


@pytest.mark.parametrize("flags, values", [({"random_contrast": "false"}, {"random_contrast": False}),
                                           ({"crop_shift": "2"}, {"crop_shift": 2}),
                                           ({"muon": "true"}, {"muon": True}),
                                           ({"muon": "true", "muon_layers": "conv1,conv2,local4"},
                                            {"muon": True, "muon_layers": "conv1,conv2,local4"}),
                                           ({"muon": "true", "muon_decoupled_decay": "true"},
                                            {"muon": True, "muon_decoupled_decay": True})],
                         ids=lambda value: ",".join(value))
def test_a_run_with_an_augmentation_or_optimizer_flag_trains_and_records_it(capsys, stripe_data, tmp_path, flags,
                                                                            values):
    train_dir = tmp_path / "train"
    given = [f"--{flag}={text}" for flag, text in flags.items()]
    out = train(capsys, stripe_data, train_dir, *given, "--batch_size=10", "--max_steps=2")
    assert f"(tutorial recipe with {' '.join(given)}, " in out
    state = checkpoints.TrainState()
    state.restore(tf.train.latest_checkpoint(str(train_dir)))
    recorded = {flag: state.description.fields["recipe_values"][flag] for flag in values}
    assert recorded == values and all(type(recorded[flag]) is type(value) for flag, value in values.items())
    assert int(state.step) == 2


def test_a_run_with_swa_ends_on_the_mean_of_its_last_weights_and_records_it(capsys, monkeypatch, stripe_data,
                                                                             tmp_path):
    monkeypatch.setitem(config.RECIPES, "tiny", TINY_RECIPE)
    train_dir = tmp_path / "train"
    # 500 records at 50 a step, 4 epochs: the last 0.2 epochs are steps 39 and 40.
    out = train_quietly(capsys, stripe_data, train_dir, "--recipe=tiny", "--swa_epochs=0.2",
                        "--swa_learning_rate=0.01", "--batch_size=50", "--save_checkpoint_steps=1")
    assert "(tiny recipe with --swa_epochs=0.2 --swa_learning_rate=0.01, " in out
    at = {}
    for step in (39, 40):
        at[step] = checkpoints.TrainState()
        at[step].restore(str(train_dir / f"model.ckpt-{step}"))
    values = at[40].description.fields["recipe_values"]
    assert (values["swa_epochs"], values["swa_learning_rate"]) == (0.2, 0.01)
    for average, weights_39, weights_40 in zip(at[40].averages.trainable_variables,
                                               at[39].model.trainable_variables, at[40].model.trainable_variables):
        np.testing.assert_allclose(average.numpy(), (weights_39.numpy() + weights_40.numpy()) / 2,
                                   rtol=1e-5, atol=1e-7)


def test_a_checkpoint_from_before_the_decay_flags_resumes_with_the_decay_of_then(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    old = checkpoints.TrainState()
    old.step.assign(3)
    old.examples_seen.assign(30)
    fields = checkpoints.describe(config.RECIPES["tutorial"], tf.float32)
    for key in config.TUTORIAL_SCHEDULE_FLAGS:  # constants in the code then
        del fields["recipe_values"][key]
    del fields["seed"]
    old.description.fields = fields
    tf.train.CheckpointManager(old.checkpoint(), str(train_dir), max_to_keep=5,
                               checkpoint_name=checkpoints.CHECKPOINT_NAME).save(checkpoint_number=3)

    status, out, err = run(capsys, cifar10_train.main, f"--data_dir={stripe_data}", f"--train_dir={train_dir}",
                           "--batch_size=10", "--max_steps=4", "--num_epochs_per_decay=100")
    assert status == 1 and "differs (num_epochs_per_decay: 350.0 -> 100.0)" in err
    assert "pass --recipe=tutorial to resume it" in err
    out = train_quietly(capsys, stripe_data, train_dir, "--batch_size=10", "--max_steps=4")
    assert f"resuming from {train_dir}/model.ckpt-3 at step 3 of 4 (tutorial recipe, " in out
