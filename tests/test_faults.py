"""Faults, with real processes and signals: kill -9, SIGINT/SIGTERM, a diverging loss,
and an evaluator polling a folder that a trainer writes and prunes."""
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

import cifar10_eval
import cifar10_train
from cifar10 import evaluator, trainer
from conftest import REPO

STEP_LINE = re.compile(r": step (\d+), loss = ")


def start(script, log_path, *flags):
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, str(REPO / script), *flags], stdout=log, stderr=subprocess.STDOUT,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    process.log = log
    return process


def wait_for(log_path, pattern, timeout=120):
    """Wait until the log file matches pattern; returns the match."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, open(log_path).read())
        if match:
            return match
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in {log_path}:\n{open(log_path).read()}")


def finish(process, timeout=120):
    process.wait(timeout=timeout)
    process.log.close()
    return process.returncode, open(process.log.name).read()


def train_flags(data_dir, train_dir, *flags):
    return [f"--data_dir={data_dir}", f"--train_dir={train_dir}", "--batch_size=8", "--save_summaries_steps=0",
            *flags]


def test_kill_9_at_random_moments_always_leaves_a_resumable_checkpoint(stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    chance = random.Random()
    for attempt in range(4):
        process = start("cifar10_train.py", tmp_path / f"run{attempt}.log",
                        *train_flags(stripe_data, train_dir, "--max_steps=100000", "--log_frequency=1",
                                     "--save_checkpoint_steps=1"))  # saving all the time: kills land mid-save
        wait_for(tmp_path / f"run{attempt}.log", r": step \d+, loss")
        time.sleep(chance.uniform(0, 1.0))
        process.send_signal(signal.SIGKILL)
        finish(process)
        latest = tf.train.latest_checkpoint(str(train_dir))
        assert latest is not None
        tf.train.load_checkpoint(latest).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")  # complete and readable

    resumed_at = int(latest.rsplit("-", 1)[1])
    status, log = finish(start("cifar10_train.py", tmp_path / "last.log",
                               *train_flags(stripe_data, train_dir, f"--max_steps={resumed_at + 3}",
                                            "--log_frequency=1")))
    assert status == 0, log
    assert f"resuming from {latest} at step {resumed_at}" in log
    assert [int(s) for s in STEP_LINE.findall(log)] == [resumed_at + 1, resumed_at + 2, resumed_at + 3]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_current_step_and_exits_cleanly(stripe_data, tmp_path, signum):
    train_dir = tmp_path / "train"
    process = start("cifar10_train.py", tmp_path / "run.log",
                    *train_flags(stripe_data, train_dir, "--max_steps=100000", "--log_frequency=1",
                                 "--save_checkpoint_secs=0"))
    wait_for(tmp_path / "run.log", r": step 5, loss")
    process.send_signal(signum)
    status, log = finish(process)
    assert status == 0, log
    stopped = re.search(rf"stopped by {signum.name} at step (\d+); saved (\S+)", log)
    assert stopped, log
    assert stopped.group(2) == tf.train.latest_checkpoint(str(train_dir))
    assert stopped.group(2).endswith(f"model.ckpt-{stopped.group(1)}")
    assert int(stopped.group(1)) == int(STEP_LINE.findall(log)[-1])
    assert "Traceback" not in log


def test_a_diverging_loss_stops_with_an_error_and_keeps_the_last_good_checkpoint(capsys, monkeypatch, stripe_data,
                                                                                    tmp_path):
    train_dir = tmp_path / "train"
    assert cifar10_train.main(train_flags(stripe_data, train_dir, "--max_steps=10")) == 0
    good = tf.train.latest_checkpoint(str(train_dir))
    assert good.endswith("model.ckpt-10")
    capsys.readouterr()

    # A learning rate that blows the weights up at once.
    monkeypatch.setattr(trainer, "learning_rate_schedule", lambda recipe, steps_per_epoch: lambda step: 1e30)
    status = cifar10_train.main(train_flags(stripe_data, train_dir, "--max_steps=40", "--log_frequency=5",
                                            "--save_checkpoint_steps=2"))
    err = capsys.readouterr().err
    assert status == 1
    assert re.search(r"error: Model diverged with (loss = (nan|inf)|non-finite weights) at step 1[0-5]", err), err
    assert f"the latest good checkpoint ({good}) stays the latest" in err
    assert tf.train.latest_checkpoint(str(train_dir)) == good


def test_the_waiting_evaluator_follows_a_trainer_that_prunes_checkpoints(stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    evaluator = start("cifar10_eval.py", tmp_path / "eval.log", f"--data_dir={stripe_data}",
                      f"--checkpoint_dir={train_dir}", f"--eval_dir={tmp_path / 'eval'}", "--eval_interval_secs=0.05",
                      "--num_examples=200", "--batch_size=50")
    trainer_process = start("cifar10_train.py", tmp_path / "train.log",
                            *train_flags(stripe_data, train_dir, "--max_steps=80", "--save_checkpoint_steps=2"))
    status, train_log = finish(trainer_process, timeout=240)
    assert status == 0, train_log
    wait_for(tmp_path / "eval.log", r"at step 80\)")
    evaluator.send_signal(signal.SIGINT)
    status, log = finish(evaluator)
    assert status == 0 and "evaluator stopped" in log, log
    assert "Traceback" not in log and not re.search("^error: ", log, re.M)
    steps = [int(s) for s in re.findall(r"precision @ 1 = [\d.]+ \(\d+/200 at step (\d+)\)", log)]
    assert len(steps) >= 2 and steps == sorted(set(steps)) and steps[-1] == 80
    assert all(step % 2 == 0 for step in steps)  # only checkpoints the trainer completed


def test_a_checkpoint_pruned_between_listing_and_loading_is_skipped(capsys, monkeypatch, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    flags = train_flags(stripe_data, train_dir, "--save_checkpoint_steps=2")
    assert cifar10_train.main(flags + ["--max_steps=6"]) == 0
    real_restore = evaluator.restore_averages
    calls = []

    def restore_while_the_trainer_goes_on(model, path):
        if not calls:  # the trainer saves 8..16 and, keeping 5, deletes the one just listed
            assert cifar10_train.main(flags + ["--max_steps=16"]) == 0
        calls.append(path)
        return real_restore(model, path)

    monkeypatch.setattr(evaluator, "restore_averages", restore_while_the_trainer_goes_on)
    capsys.readouterr()
    status = cifar10_eval.main([f"--data_dir={stripe_data}", f"--checkpoint_dir={train_dir}",
                                f"--eval_dir={tmp_path / 'eval'}", "--run_once", "--num_examples=200"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert calls == [f"{train_dir}/model.ckpt-6", f"{train_dir}/model.ckpt-16"]
    assert f"skipped {train_dir}/model.ckpt-6, which is gone or incomplete" in out
    assert re.search(r"precision @ 1 = [\d.]+ \(\d+/200 at step 16\)", out)


def test_an_unreadable_latest_checkpoint_is_a_clear_error(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    assert cifar10_train.main(train_flags(stripe_data, train_dir, "--max_steps=2")) == 0
    with open(train_dir / "model.ckpt-2.index", "r+b") as index:
        index.write(b"garbage" * 10)
    capsys.readouterr()
    status = cifar10_eval.main([f"--data_dir={stripe_data}", f"--checkpoint_dir={train_dir}",
                                f"--eval_dir={tmp_path / 'eval'}", "--run_once", "--num_examples=200"])
    out, err = capsys.readouterr()
    assert f"skipped {train_dir}/model.ckpt-2, which is gone or incomplete" in out
    assert status == 1 and f"{train_dir}/model.ckpt-2 is the latest checkpoint" in err and "Traceback" not in err
