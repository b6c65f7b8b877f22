"""Shared test set-up: two logical CPU devices, small CIFAR-10 data written at run time,
and running the programs in-process."""
import os
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cifar10 import startup  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
startup.use_onednn()  # the CPU kernels the programs use, in this process too

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs, so that MirroredStrategy tests run two towers on this machine. This
# must happen before TensorFlow starts its runtime, hence here, at collection time.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

from cifar10 import data  # noqa: E402

# As the programs do, and for the same reason: on a GPU machine the programs these tests
# start beside this process need GPU memory too. Also before the runtime starts.
startup.grow_gpu_memory()

def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a GPU (benchmarks/gpu_check.sh runs these: pytest -m gpu)")


# Stripe patterns: classes 0-4 horizontal stripes, 5-9 vertical, of these widths (pixels).
STRIPE_WIDTHS = (1, 2, 3, 4, 6)


def records_bytes(labels, images):
    """CIFAR-10 binary records for uint8 labels [N] and uint8 images [N, 32, 32, 3]."""
    planes = np.asarray(images, np.uint8).transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([np.asarray(labels, np.uint8)[:, None], planes], axis=1).tobytes()


def stripe_images(labels, rng):
    """Learnable images: each class a stripe orientation and period, at a random phase and
    colour, with noise; survives the random crop, flip, brightness and contrast."""
    n = len(labels)
    coords = np.arange(data.IMAGE_SIZE)
    images = np.empty([n, data.IMAGE_SIZE, data.IMAGE_SIZE, data.DEPTH], np.float32)
    for i, label in enumerate(labels):
        width = STRIPE_WIDTHS[label % 5]
        wave = ((coords + rng.integers(2 * width)) // width) % 2
        pattern = np.tile(wave[:, None], (1, data.IMAGE_SIZE)) if label < 5 else np.tile(wave, (data.IMAGE_SIZE, 1))
        colour = rng.uniform(60, 200, size=3)
        images[i] = pattern[..., None] * colour + rng.normal(0, 12, size=images.shape[1:])
    return np.clip(images, 0, 255).astype(np.uint8)


def write_stripe_data(root, records_per_file=100, test_records=200, seed=0):
    """Write cifar-10-batches-bin/ under root with stripe data; returns root (a str)."""
    rng = np.random.default_rng(seed)
    batches = pathlib.Path(root, data.BATCHES_DIR)
    batches.mkdir(parents=True, exist_ok=True)
    for name, count in [(f, records_per_file) for f in data.TRAIN_FILES] + [(data.TEST_FILE, test_records)]:
        labels = rng.integers(0, data.NUM_CLASSES, size=count)
        (batches / name).write_bytes(records_bytes(labels, stripe_images(labels, rng)))
    return str(root)


@pytest.fixture(scope="session")
def stripe_data(tmp_path_factory):
    """A data folder of 500 training and 200 test stripe records (read-only by convention)."""
    return write_stripe_data(tmp_path_factory.mktemp("stripe_data"))


# A learning rate for the runs at batch 8 that test something other than learning: at batch 8
# the tutorial's 0.1 can diverge within 50 steps on stripe data (loss 3e27 by step 42 in one
# CI run, non-finite weights at step 52 in another), and a diverged run stops with an error;
# a diverging loss has a test of its own (test_faults).
SMALL_BATCH_LEARNING_RATE = "--learning_rate=0.01"

# The tutorial's log line; groups: time, step, loss, examples/sec, sec/batch.
# A run with a known end adds its progress after the classic part (PROGRESS).
STEP_LINE = re.compile(r"^(\S+ \S+): step (\d+), loss = ([\d.]+) \(([\d.]+) examples/sec; ([\d.]+) sec/batch\)"
                       r"(?: epoch [\d.]+, \d+% done(?:, ETA (?:\d+ days?, )?\d+:\d\d:\d\d)?)?$", re.M)
# The progress: epoch, percent done, and from the second log line on, the time left
# (a datetime.timedelta: "1 day, 1:06:39" beyond a day).
PROGRESS = re.compile(r"sec/batch\) epoch ([\d.]+), (\d+)% done(?:, ETA (?:\d+ days?, )?(\d+):(\d\d):(\d\d))?$", re.M)


def logged_steps(log):
    """The step of each of log's step lines, in order."""
    return [int(line[1]) for line in STEP_LINE.findall(log)]


def run(capsys, main, *flags):
    """Run an entry point's main in this process: (exit status, stdout, stderr)."""
    status = main(list(flags))
    out, err = capsys.readouterr()
    return status, out, err


def succeed(capsys, main, *flags):
    """Run an entry point's main, which must exit with 0; returns its stdout."""
    status, out, err = run(capsys, main, *flags)
    assert status == 0, out + err
    return out


def train(capsys, data_dir, train_dir, *flags, main=None):
    """Train with cifar10_train.py's main (or main) to success; returns its stdout."""
    import cifar10_train
    return succeed(capsys, main or cifar10_train.main, f"--data_dir={data_dir}", f"--train_dir={train_dir}", *flags)


def evaluate(capsys, data_dir, checkpoint_dir, tmp_path, *flags):
    """cifar10_eval.py --run_once, in this process: (exit status, stdout, stderr)."""
    import cifar10_eval
    return run(capsys, cifar10_eval.main, f"--data_dir={data_dir}", f"--checkpoint_dir={checkpoint_dir}",
               f"--eval_dir={tmp_path / 'eval'}", "--run_once", *flags)
