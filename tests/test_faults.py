"""Faults, with real processes and signals: kill -9 at random moments, SIGINT/SIGTERM, a diverging loss,
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
from cifar10 import checkpoints, trainer
from cifar10.errors import SignalExit, StopRequests
from cifar10.evaluator import count_predictions
from conftest import REPO, SMALL_BATCH_LEARNING_RATE, logged_steps

KILLS = 8


_started = []  # the processes of the test that runs


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    """Kill what a test started and left running, as one that failed half-way would."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def start(script, log_path, *flags):
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, str(REPO / script), *flags], stdout=log, stderr=subprocess.STDOUT,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    process.log = log
    _started.append(process)
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
            SMALL_BATCH_LEARNING_RATE, *flags]


def test_kill_9_at_random_moments_never_loses_a_saved_step(stripe_data, tmp_path):
    """The fault-injection hunt: SIGKILL the trainer, which saves every step, at random
    moments of start-up, restore, training and saving. Each restart resumes from a step
    no older than any the previous run had surely saved (a step line is printed before
    that step's save, so the one before the last is saved), and the last run ends at
    --max_steps."""
    train_dir = tmp_path / "train"
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    surely_saved = 0
    for attempt in range(KILLS):
        log_path = tmp_path / f"run{attempt}.log"
        process = start("cifar10_train.py", log_path,
                        *train_flags(stripe_data, train_dir, "--max_steps=100000", "--log_frequency=1",
                                     "--save_checkpoint_steps=1"))
        if attempt % 3 == 0:  # during start-up, or while it restores
            time.sleep(chance.uniform(0.5, 4.0))
        else:  # while it trains and saves, once a save has surely completed, so that each run makes progress
            wait_for(log_path, r": step \d+, loss(?:.*\n)+.*: step \d+, loss")
            time.sleep(chance.uniform(0, 1.0))
        process.send_signal(signal.SIGKILL)
        _, log = finish(process)
        resumed = re.search(r"(?:resuming from \S+|starting) at step (\d+)", log)
        if resumed:
            assert int(resumed.group(1)) >= surely_saved, f"seed {seed}, run {attempt}:\n{log}"
        steps = logged_steps(log)
        surely_saved = max([surely_saved] + steps[:-1])

    status, log = finish(start("cifar10_train.py", tmp_path / "last.log",
                               *train_flags(stripe_data, train_dir, f"--max_steps={surely_saved + 5}",
                                            "--log_frequency=1")))
    assert status == 0, log
    resumed = re.search(r"resuming from \S+ at step (\d+)", log)
    assert resumed, f"seed {seed}: the last run did not resume:\n{log}"
    resumed_at = int(resumed.group(1))
    assert resumed_at >= surely_saved, f"seed {seed}:\n{log}"
    assert logged_steps(log) == list(range(resumed_at + 1, surely_saved + 6))
    assert tf.train.latest_checkpoint(str(train_dir)).endswith(f"model.ckpt-{surely_saved + 5}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_current_step_and_exits_with_128_plus_its_number(stripe_data, tmp_path, signum):
    train_dir = tmp_path / "train"
    process = start("cifar10_train.py", tmp_path / "run.log",
                    *train_flags(stripe_data, train_dir, "--max_steps=100000", "--log_frequency=1",
                                 "--save_checkpoint_secs=0"))
    wait_for(tmp_path / "run.log", r": step 5, loss")
    process.send_signal(signum)
    status, log = finish(process)
    assert status == 128 + signum, log  # unfinished, so that a job controller restarts it
    stopped = re.search(rf"stopped by {signum.name} at step (\d+); saved (\S+)", log)
    assert stopped, log
    assert stopped.group(2) == tf.train.latest_checkpoint(str(train_dir))
    assert stopped.group(2).endswith(f"model.ckpt-{stopped.group(1)}")
    assert int(stopped.group(1)) == logged_steps(log)[-1]
    assert "Traceback" not in log


def test_a_second_signal_exits_at_once(monkeypatch, capsys):
    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    with StopRequests(again_note="exiting at once, without saving") as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested == signal.SIGINT and exits == []  # the first one: the program's loop stops
        os.kill(os.getpid(), signal.SIGINT)
    assert exits == [128 + signal.SIGINT]
    assert "SIGINT again: exiting at once, without saving" in capsys.readouterr().err


# With Muon, the non-finite gradients after the first blown-up step reach its eigendecomposition.
@pytest.mark.parametrize("summaries, optimizer", [("--save_summaries_steps=0", "--muon=false"),
                                                  ("--save_summaries_steps=1", "--muon=false"),
                                                  ("--save_summaries_steps=0", "--muon=true")])
def test_a_diverging_loss_stops_with_an_error_and_keeps_the_last_good_checkpoint(capsys, monkeypatch, stripe_data,
                                                                                    tmp_path, summaries, optimizer):
    train_dir = tmp_path / "train"
    assert cifar10_train.main(train_flags(stripe_data, train_dir, "--max_steps=10", optimizer)) == 0
    good = tf.train.latest_checkpoint(str(train_dir))
    assert good.endswith("model.ckpt-10")
    capsys.readouterr()

    # A learning rate that blows the weights up at once.
    monkeypatch.setattr(trainer, "learning_rate_schedule", lambda *schedule: lambda examples_seen: 1e30)
    status = cifar10_train.main(train_flags(stripe_data, train_dir, "--max_steps=40", "--log_frequency=5",
                                            "--save_checkpoint_steps=2", summaries, optimizer))
    err = capsys.readouterr().err
    assert status == 1
    assert re.search(r"error: Model diverged with (loss = (nan|inf)|non-finite weights) at step 1[0-5]", err), err
    assert f"the latest good checkpoint ({good}) stays the latest" in err and "Traceback" not in err
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
    assert status == 128 + signal.SIGINT and "evaluator stopped" in log, log
    assert "Traceback" not in log and not re.search("^error: ", log, re.M)
    steps = [int(s) for s in re.findall(r"precision @ 1 = [\d.]+ \(accuracy: \d+/200 at step (\d+)\)", log)]
    assert len(steps) >= 2 and steps == sorted(set(steps)) and steps[-1] == 80
    assert all(step % 2 == 0 for step in steps)  # only checkpoints the trainer completed


def test_the_waiting_evaluator_says_once_what_it_waits_for(stripe_data, tmp_path):
    mistyped = tmp_path / "trian"
    evaluator = start("cifar10_eval.py", tmp_path / "eval.log", f"--checkpoint_dir={mistyped}",
                      f"--eval_dir={tmp_path / 'eval'}", "--eval_interval_secs=0.05", f"--data_dir={stripe_data}")
    wait_for(tmp_path / "eval.log", "waiting for a checkpoint")
    time.sleep(1)  # 20 looks more
    evaluator.send_signal(signal.SIGTERM)
    status, log = finish(evaluator)
    assert status == 128 + signal.SIGTERM, log
    assert log.count(f"waiting for a checkpoint in --checkpoint_dir={mistyped} (the trainer's --train_dir)") == 1
    assert "evaluator stopped" in log and "Traceback" not in log


def test_a_signal_ends_the_evaluator_at_once_however_long_its_interval(stripe_data, tmp_path):
    evaluator = start("cifar10_eval.py", tmp_path / "eval.log", f"--checkpoint_dir={tmp_path / 'train'}",
                      f"--eval_dir={tmp_path / 'eval'}", "--eval_interval_secs=3600", f"--data_dir={stripe_data}")
    wait_for(tmp_path / "eval.log", "waiting for a checkpoint")
    evaluator.send_signal(signal.SIGINT)
    status, log = finish(evaluator, timeout=60)  # not after the hour's sleep
    assert status == 128 + signal.SIGINT and "evaluator stopped" in log, log
    assert "Traceback" not in log


def test_a_signal_ends_an_evaluation_after_the_batch_in_progress():
    predicted_batches = []

    def predict_and_signal_at_the_second_batch(images):
        predicted_batches.append(images)
        if len(predicted_batches) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return tf.zeros([images.shape[0]], tf.int32)

    dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([10, 24, 24, 3]), tf.zeros([10], tf.int32))).batch(2)
    with StopRequests() as stop, pytest.raises(SignalExit) as stopped:
        count_predictions(None, 0, dataset, predict_and_signal_at_the_second_batch, stop=stop)
    assert stopped.value.signum == signal.SIGINT and len(predicted_batches) == 2


def test_a_checkpoint_pruned_between_listing_and_loading_is_skipped(capsys, monkeypatch, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    flags = train_flags(stripe_data, train_dir, "--save_checkpoint_steps=2")
    assert cifar10_train.main(flags + ["--max_steps=6"]) == 0
    real_restore = checkpoints.restore_averages
    calls = []

    def restore_while_the_trainer_goes_on(model, path):
        if not calls:  # the trainer saves 8..16 and, keeping 5, deletes the one just listed
            assert cifar10_train.main(flags + ["--max_steps=16"]) == 0
        calls.append(path)
        return real_restore(model, path)

    monkeypatch.setattr(checkpoints, "restore_averages", restore_while_the_trainer_goes_on)
    capsys.readouterr()
    status = cifar10_eval.main([f"--data_dir={stripe_data}", f"--checkpoint_dir={train_dir}",
                                f"--eval_dir={tmp_path / 'eval'}", "--run_once", "--num_examples=200"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert calls == [f"{train_dir}/model.ckpt-6", f"{train_dir}/model.ckpt-16"]
    assert f"skipped {train_dir}/model.ckpt-6: its files are missing" in out
    assert re.search(r"precision @ 1 = [\d.]+ \(accuracy: \d+/200 at step 16\)", out)


def test_an_unreadable_latest_checkpoint_is_a_clear_error(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    assert cifar10_train.main(train_flags(stripe_data, train_dir, "--max_steps=2")) == 0
    with open(train_dir / "model.ckpt-2.index", "r+b") as index:
        index.write(b"garbage" * 10)
    capsys.readouterr()
    status = cifar10_eval.main([f"--data_dir={stripe_data}", f"--checkpoint_dir={train_dir}",
                                f"--eval_dir={tmp_path / 'eval'}", "--run_once", "--num_examples=200"])
    out, err = capsys.readouterr()
    assert f"skipped {train_dir}/model.ckpt-2: it is damaged" in out
    assert status == 1 and f"{train_dir}/model.ckpt-2 is the latest checkpoint" in err and "Traceback" not in err
