"""What only a GPU can show: float16 with loss scaling on the real thing, towers on logical
GPUs, and the trainer and the evaluator sharing one GPU. Each test skips on a machine
without a GPU; benchmarks/gpu_check.sh runs them (`pytest -m gpu`)."""
import os
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from conftest import REPO, STEP_LINE, evaluate, train

import cifar10_multi_gpu_train

GPUS = tf.config.list_physical_devices("GPU")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not GPUS, reason="needs a GPU")]


def test_float16_with_loss_scaling_trains_on_the_gpu(capsys, stripe_data, tmp_path):
    out = train(capsys, stripe_data, tmp_path / "train", "--max_steps=300", "--batch_size=32",
                "--save_summaries_steps=100")
    assert "float16 compute" in out  # the GPU's default
    losses = [float(loss) for _, _, loss, _, _ in STEP_LINE.findall(out)]
    assert losses[-1] < losses[0] / 2
    status, out, err = evaluate(capsys, stripe_data, tmp_path / "train", tmp_path)
    assert status == 0, err
    assert float(out.split("precision @ 1 = ")[1].split()[0]) >= 0.9


def test_more_towers_than_gpus_is_a_clear_error(capsys, tmp_path):
    too_many = len(GPUS) + 1
    status = cifar10_multi_gpu_train.main([f"--num_gpus={too_many}", f"--train_dir={tmp_path}"])
    assert status == 1 and f"--num_gpus={too_many}, but this machine has" in capsys.readouterr().err


def test_two_towers_on_two_logical_gpus_of_one_gpu(stripe_data, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.logical_gpus", "2", "cifar10_multi_gpu_train.py", "--num_gpus=2",
         f"--data_dir={stripe_data}", f"--train_dir={tmp_path / 'train'}", "--max_steps=60", "--batch_size=16"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 replica(s) of batch 16" in result.stdout
    assert tf.train.latest_checkpoint(str(tmp_path / "train")).endswith("model.ckpt-60")


def test_the_trainer_and_the_evaluator_share_one_gpu(stripe_data, tmp_path):
    """TensorFlow takes the whole GPU unless memory growth is on: the evaluator must run
    beside a trainer that holds the GPU."""
    train_dir = tmp_path / "train"
    trainer = subprocess.Popen(
        [sys.executable, "cifar10_train.py", f"--data_dir={stripe_data}", f"--train_dir={train_dir}",
         "--max_steps=100000", "--save_checkpoint_steps=20"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while tf.train.latest_checkpoint(str(train_dir)) is None:
            assert trainer.poll() is None and time.monotonic() < deadline, trainer.stdout.read()
            time.sleep(1)
        evaluation = subprocess.run(
            [sys.executable, "cifar10_eval.py", f"--data_dir={stripe_data}", f"--checkpoint_dir={train_dir}",
             f"--eval_dir={tmp_path / 'eval'}", "--run_once", "--device=gpu"],
            cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ))
        assert evaluation.returncode == 0, evaluation.stdout + evaluation.stderr
        assert "precision @ 1 = " in evaluation.stdout
        assert trainer.poll() is None, "the trainer stopped while the evaluator ran"
    finally:
        trainer.terminate()
        trainer.wait(timeout=120)
