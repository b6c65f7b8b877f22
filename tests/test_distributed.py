"""Towers (MirroredStrategy on two logical CPUs), several workers (separate processes on
127.0.0.1) and the one checkpoint format that every trainer and the evaluator share."""
import dataclasses
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import cifar10_eval
import cifar10_multi_gpu_train
import cifar10_train
from cifar10 import distribute
from cifar10.config import RECIPES
from cifar10.trainer import TrainState, make_train_step
from conftest import REPO, STEP_LINE, logged_steps, succeed

def one_step(strategy, initial_weights, images, labels, global_batch, recipe=RECIPES["tutorial"]):
    """Loss and weights after one step of strategy on one global batch."""
    with strategy.scope():
        state = TrainState()
    for variable, value in zip(state.model.trainable_variables, initial_weights):
        variable.assign(value)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(global_batch)
    train_step = make_train_step(strategy, state, global_batch, lambda examples_seen: 0.1, recipe)
    loss, _, _ = train_step(iter(strategy.experimental_distribute_dataset(dataset)))
    return float(loss), [v.numpy() for v in state.model.trainable_variables]


@pytest.mark.parametrize("recipe", [RECIPES["tutorial"], dataclasses.replace(RECIPES["tutorial"], muon=True)],
                         ids=["sgd", "muon"])
def test_two_towers_apply_the_same_update_as_one_device_on_both_batches(recipe):
    rng = np.random.default_rng(0)
    images = rng.normal(size=[32, 24, 24, 3]).astype(np.float32)
    labels = rng.integers(0, 10, size=32).astype(np.int32)
    initial = [v.numpy() for v in TrainState().model.trainable_variables]

    single_loss, single = one_step(tf.distribute.get_strategy(), initial, images, labels, 32, recipe)
    towers = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    tower_loss, mirrored = one_step(towers, initial, images, labels, 32, recipe)

    assert towers.num_replicas_in_sync == 2
    np.testing.assert_allclose(tower_loss, single_loss, rtol=1e-5)
    for before, a, b in zip(initial, single, mirrored):
        assert not np.allclose(a, before)  # the step changed the weights...
        if not recipe.muon:
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)  # ...identically
        else:  # the towers' other order of sums rounds otherwise, in directions that 32 images'
            # gradients lack and Muon's Newton-Schulz steps amplify (up to 3.4445 ** 5 times)
            assert np.linalg.norm(b - a) < 5e-2 * np.linalg.norm(a - before)


def test_two_towers_train_and_the_log_counts_both(capsys, stripe_data, tmp_path):
    out = succeed(capsys, cifar10_multi_gpu_train.main, "--num_gpus=2", f"--data_dir={stripe_data}",
                   f"--train_dir={tmp_path}", "--max_steps=60", "--batch_size=16", "--log_frequency=10",
                   "--seed=1")  # unseeded, a rare run diverged at the tutorial's rate
    assert "No GPU found: running 2 towers on 2 logical CPU devices." in out
    assert "2 replica(s) of batch 16" in out
    lines = STEP_LINE.findall(out)
    assert float(lines[-1][2]) < float(lines[0][2])  # the loss fell
    # examples/sec counts both towers: 2 x 16 examples a step, over the time per step
    # read off the log lines' own clocks; sec/batch is per tower (half a step).
    for previous, line in zip(lines[1:], lines[2:]):
        elapsed = (datetime.datetime.fromisoformat(line[0]) - datetime.datetime.fromisoformat(previous[0]))
        step_seconds = elapsed.total_seconds() / 10
        assert float(line[3]) == pytest.approx(32 / step_seconds, rel=0.25)
        assert float(line[4]) == pytest.approx(step_seconds / 2, rel=0.25, abs=2e-3)


def test_checkpoints_move_between_towers_one_device_and_the_evaluator(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    common = [f"--data_dir={stripe_data}", f"--train_dir={train_dir}", "--batch_size=16", "--log_frequency=5",
              "--save_summaries_steps=0"]
    succeed(capsys, cifar10_multi_gpu_train.main, "--num_gpus=2", "--max_steps=15", *common)

    out = succeed(capsys, cifar10_train.main, "--max_steps=20", *common)
    assert "model.ckpt-15 at step 15" in out and "1 replica(s)" in out
    assert logged_steps(out) == [20]

    out = succeed(capsys, cifar10_multi_gpu_train.main, "--num_gpus=2", "--max_steps=25", *common)
    assert "model.ckpt-20 at step 20" in out and "2 replica(s)" in out
    assert logged_steps(out) == [25]

    out = succeed(capsys, cifar10_eval.main, f"--data_dir={stripe_data}", f"--checkpoint_dir={train_dir}",
                   f"--eval_dir={tmp_path / 'eval'}", "--run_once", "--num_examples=200")
    assert re.search(r"\(accuracy: \d+/200 at step 25\)", out), out


@pytest.mark.parametrize("tf_config, complaint", [
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": "127.0.0.1:1"}, "task": {"type": "worker", "index": 0}}', "lists of 'host:port'"),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 2}}',
     "'task' must name"),
    ('{"cluster": {"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]}, "task": {"type": "ps", "index": 0}}',
     "these trainers take 'worker'"),
])
def test_a_malformed_tf_config_gives_a_clear_error(capsys, monkeypatch, tmp_path, tf_config, complaint):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    status = cifar10_train.main([f"--train_dir={tmp_path}", f"--data_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: ") and "TF_CONFIG" in err and complaint in err
    assert "Traceback" not in err


def test_a_single_task_tf_config_means_one_machine(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}')
    assert distribute.cluster_from_tf_config() is None


# ----------------------------------------------------------------------------------
# Several workers: each a separate process with its own TF_CONFIG
# ----------------------------------------------------------------------------------

def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(tmp_path, data_dir, train_dir, max_steps, tag, script="cifar10_train.py", other_train_dir=None):
    """Two worker processes of one job; the second reads other_train_dir if given."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   TMPDIR=str(scratch), PYTHONUNBUFFERED="1")
        log = open(tmp_path / f"{tag}-worker{index}.log", "w")
        workers.append((subprocess.Popen(
            [sys.executable, str(REPO / script), f"--data_dir={data_dir}",
             f"--train_dir={other_train_dir if index and other_train_dir else train_dir}",
             f"--max_steps={max_steps}", "--batch_size=16", "--log_frequency=5", "--save_checkpoint_steps=10",
             "--save_summaries_steps=0"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path), log))
    return workers


def finish(workers, timeout=240):
    texts = []
    for process, log in workers:
        process.wait(timeout=timeout)
        log.close()
        texts.append((process.returncode, open(log.name).read()))
    return texts


def test_two_workers_train_one_job_that_the_evaluator_reads(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    results = finish(start_workers(tmp_path, stripe_data, train_dir, 30, "job", "cifar10_multi_gpu_train.py"))
    for status, log in results:
        assert status == 0, log
        assert "one job across 2 workers" in log and "2 replica(s) of batch 16" in log
        assert logged_steps(log) == [5, 10, 15, 20, 25, 30]
    assert "the chief writes checkpoints" in results[1][1]
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("model.ckpt-30")
    assert os.listdir(tmp_path / "scratch") == []  # the other worker's private saves are gone
    out = succeed(capsys, cifar10_eval.main, f"--data_dir={stripe_data}", f"--checkpoint_dir={train_dir}",
                   f"--eval_dir={tmp_path / 'eval'}", "--run_once", "--num_examples=200")
    assert "at step 30)" in out


def latest_step(train_dir):
    latest = tf.train.latest_checkpoint(str(train_dir))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def test_a_killed_worker_restarted_with_the_others_resumes_the_job(stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    workers = start_workers(tmp_path, stripe_data, train_dir, 100_000, "first")
    deadline = time.monotonic() + 180
    while latest_step(train_dir) < 20 and time.monotonic() < deadline:
        time.sleep(0.5)
    saved = latest_step(train_dir)
    assert saved >= 20
    workers[1][0].send_signal(signal.SIGKILL)
    chief_status, chief_log = finish(workers[:1], timeout=120)[0]
    assert chief_status == 1 and "Lost contact with another worker" in chief_log and "Traceback" not in chief_log
    workers[1][1].close()
    resumed_from = latest_step(train_dir)
    assert resumed_from >= saved

    results = finish(start_workers(tmp_path, stripe_data, train_dir, resumed_from + 10, "restart"))
    for status, log in results:
        assert status == 0, log
        assert f"model.ckpt-{resumed_from} at step {resumed_from}" in log
        assert logged_steps(log)[-1] == resumed_from + 10
    assert tf.train.latest_checkpoint(str(train_dir)).endswith(f"model.ckpt-{resumed_from + 10}")


def test_workers_that_resume_different_steps_stop_with_a_clear_error(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    succeed(capsys, cifar10_train.main, f"--data_dir={stripe_data}", f"--train_dir={train_dir}", "--max_steps=10",
             "--batch_size=16", "--save_summaries_steps=0")
    unshared = tmp_path / "not_shared"  # the second worker's view: no checkpoints, and nothing to write
    results = finish(start_workers(tmp_path, stripe_data, train_dir, 20, "apart", other_train_dir=unshared))
    for status, log in results:
        assert status == 1, log
        assert "error: The workers resumed from different steps (0, 10)" in log and "Traceback" not in log
    assert not unshared.exists()  # a non-chief worker only reads --train_dir
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("model.ckpt-10")
