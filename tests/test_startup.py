"""A quiet, clear start: TensorFlow's start-up noise hidden unless --verbose, the line
saying where a run computes, GPU memory growth and the evaluator's --device applied
before TensorFlow's runtime starts."""
import os
import platform
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from cifar10 import cli, startup
from conftest import REPO, evaluate, train

# What a new user's machine without a GPU shows before the programs' first line, unless hidden.
START_UP_NOISE = ("cuInit", "Could not find cuda drivers", "This TensorFlow binary is optimized", "oneDNN",
                  "absl::InitializeLog")
# A C++ INFO line of TensorFlow's log ('I1129 14:00:00.123456  1234 file.cc:12] ...'),
# which TF_CPP_MAX_VLOG_LEVEL=1 makes TensorFlow print as it starts, on any machine.
CPP_INFO_LINE = re.compile(r"^I\d{4} [\d:.]+ +\d+ \S+:\d+\] ", re.M)
# cifar10_eval.py as `python cifar10_eval.py FLAGS` runs it, watching TensorFlow's runtime:
# whether it has started after the script's start-up, and when the GPUs are hidden.
WATCHED_EVALUATOR = """
import sys
sys.argv[0] = "cifar10_eval.py"
import cifar10_eval
import tensorflow as tf
from tensorflow.python.eager import context

def runtime():
    return "started" if context.context()._context_handle is not None else "not started"

print("after the start-up, the runtime:", runtime(), flush=True)
set_visible_devices = tf.config.set_visible_devices

def watched(devices, device_type=None):
    print(f"set_visible_devices({devices}, {device_type!r}) with the runtime {runtime()}", flush=True)
    return set_visible_devices(devices, device_type)

tf.config.set_visible_devices = watched
sys.exit(cifar10_eval.main())
"""


def fresh_environment(**settings):
    """This process's environment as a new user's shell has it: no TF_CPP_MIN_LOG_LEVEL
    or TF_ENABLE_ONEDNN_OPTS (the tests' conftest sets them), plus settings."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in (startup.LOG_LEVEL_VARIABLE, startup.ONEDNN_VARIABLE)}
    return dict(environment, PYTHONUNBUFFERED="1", **settings)


def run_program(*command, **settings):
    """Run python with command in the repository, in a fresh environment: (exit status,
    stdout and stderr together)."""
    done = subprocess.run([sys.executable, *command], cwd=REPO, env=fresh_environment(**settings),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    return done.returncode, done.stdout


def test_the_evaluator_starts_quietly_says_where_it_computes_and_hides_the_gpus_before_tensorflow_starts(
        capsys, stripe_data, tmp_path):
    out = train(capsys, stripe_data, tmp_path / "train", "--max_steps=1", "--batch_size=8",
                "--save_summaries_steps=0", "--use_fp16=false")
    assert re.search(r"^\S+ \S+: training on 1 CPU, float32 compute$", out, re.M), out
    status, log = run_program("-c", WATCHED_EVALUATOR, f"--data_dir={stripe_data}",
                              f"--checkpoint_dir={tmp_path / 'train'}", f"--eval_dir={tmp_path / 'eval'}",
                              "--run_once", "--device=cpu", "--batch_size=200", TF_CPP_MAX_VLOG_LEVEL="1")
    assert status == 0, log
    assert "after the start-up, the runtime: not started" in log  # memory growth can still be set there
    assert "set_visible_devices([], 'GPU') with the runtime not started" in log
    assert re.search(r"^\S+ \S+: evaluating on 1 CPU, float32 compute$", log, re.M), log
    assert "precision @ 1 = " in log
    assert not [noise for noise in START_UP_NOISE if noise in log], log
    assert not CPP_INFO_LINE.search(log), log  # errors only, by default


def test_verbose_shows_what_tensorflow_prints_as_it_starts():
    status, log = run_program("cifar10.py", "--verbose", TF_CPP_MAX_VLOG_LEVEL="1")
    assert status == 0, log
    assert CPP_INFO_LINE.search(log), log  # TensorFlow's log level left as it is
    assert startup.NOISE.search(log), log  # what is hidden by default
    assert re.search(r"^total +1,068,298$", log, re.M), log


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="oneDNN is turned on on x86-64")
def test_the_programs_compute_with_onednn_on_x86_64_unless_told_not_to():
    status, log = run_program("cifar10.py", "--verbose")
    assert status == 0 and "oneDNN custom operations are on" in log, log
    status, log = run_program("cifar10.py", "--verbose", TF_ENABLE_ONEDNN_OPTS="0")
    assert status == 0 and "oneDNN custom operations are on" not in log, log


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="this machine has a GPU")
def test_device_gpu_without_a_gpu_names_the_flag(capsys, stripe_data, tmp_path):
    status, out, err = evaluate(capsys, stripe_data, tmp_path / "train", tmp_path, "--device=gpu")
    assert status == 1
    assert err.startswith("error: --device=gpu, but TensorFlow finds no GPU on this machine") and "--device=cpu" in err
    assert "Traceback" not in err


def test_a_device_that_is_not_a_choice_names_the_choices(capsys, stripe_data, tmp_path):
    status, out, err = evaluate(capsys, stripe_data, tmp_path / "train", tmp_path, "--device=tpu")
    assert status == 1 and "error: --device=tpu: use one of auto, cpu, gpu." in err


def test_the_device_line_names_logical_devices_and_the_precision():
    towers = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])  # the conftest's two logical CPUs
    assert (startup.device_line("training", tf.float16, towers)
            == "training on 2 logical devices of 1 CPU, float16 compute with loss scaling")
    if not tf.config.get_visible_devices("GPU"):
        assert startup.device_line("evaluating", tf.float32) == "evaluating on 1 CPU, float32 compute"
        assert startup.device_line("training", tf.bfloat16, tf.distribute.get_strategy()) == (
            "training on 1 CPU, bfloat16 compute")


def test_only_start_up_lines_that_report_nothing_wrong_are_hidden():
    no_driver = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                 "I0000 00:00:1795961805.697891   12572 cudart_stub.cc:31] Could not find cuda drivers on your "
                 "machine, GPU will not be used.\n"
                 "I0000 00:00:1795961805.799890   12572 cpu_feature_guard.cc:227] This TensorFlow binary is "
                 "optimized to use available CPU instructions in performance-critical operations.\n"
                 "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
                 "appropriate compiler flags.\n")
    failed_start = ("E0000 00:00:1795961819.183251   12636 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
                    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
    real_error = "E0000 00:00:1795961819.183251   12636 cuda_dnn.cc:535] Loaded runtime CuDNN library: 9.1.0\n"
    assert startup.without_noise(no_driver + failed_start + real_error) == real_error
    # With a driver installed, CUDA failing to start is an error worth seeing.
    assert startup.without_noise(failed_start) == failed_start


@pytest.mark.parametrize("argv, verbose", [
    ([], False), (["--verbose"], True), (["--verbose=true"], True), (["--verbose=false"], False),
    (["--verbose", "false"], False), (["--verbose", "--run_once"], True), (["--verbose", "--verbose=no"], False),
    (["--", "--verbose"], False),
])
def test_verbose_is_read_from_the_command_line_as_the_flag_parses_it(argv, verbose):
    assert cli.verbose_requested(argv) is verbose
