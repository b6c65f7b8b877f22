"""Configuration of the CIFAR-10 programs, in one place.

The entry-point scripts turn their flags into one of these small, frozen objects and
pass it into the library; nothing in the library reads flags or global state.
"""
import dataclasses
import os
import tempfile

DEFAULT_DATA_DIR = "/tmp/cifar10_data"
DEFAULT_TRAIN_DIR = "/tmp/cifar10_train"
DEFAULT_EVAL_DIR = "/tmp/cifar10_eval"
DEFAULT_EXPORT_DIR = "/tmp/cifar10_model"
DATA_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
# Views of each image that evaluation can average over: the central crop; it and its
# mirror image; or, as cuda-convnet's multi-view test, the central and four corner
# crops, each also mirrored.
EVAL_VIEW_COUNTS = (1, 2, 10)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train: the optimizer, the learning-rate schedule and the regularization.

    epochs None is the tutorial's open-ended schedule (until --max_steps): learning_rate,
    divided by 10 every 350 epochs. Otherwise learning_rate is the peak, reached by a
    linear warm-up over warmup_epochs (but at least 300 steps) and followed by a linear
    decay to 0 at epochs.
    """
    epochs: float = None
    learning_rate: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    warmup_epochs: float = 0.0
    fc_weight_decay: float = 0.004  # L2 coefficient of local3 and local4
    conv_weight_decay: float = 0.0  # L2 coefficient of conv1 and conv2
    label_smoothing: float = 0.0    # weight of the uniform distribution in the targets
    cutout: int = 0                 # side in pixels of a square blanked in each training image


RECIPES = {
    "tutorial": Recipe(),
    # Tuned for time to accuracy on this network (see README.md, "Speed").
    "fast": Recipe(epochs=110, learning_rate=0.03, momentum=0.9, nesterov=True, warmup_epochs=2,
                   fc_weight_decay=0.001),
    # Longer, regularized against the over-fitting that ends "fast": the tutorial's weight
    # decay on local3 and local4, weight decay on the convolutions, label smoothing, cutout.
    "long": Recipe(epochs=300, learning_rate=0.03, momentum=0.9, nesterov=True, warmup_epochs=2,
                   fc_weight_decay=0.004, conv_weight_decay=0.001, label_smoothing=0.1, cutout=8),
}


class Cifar10Error(Exception):
    """A problem the user can fix: the message names the file or flag and what to do.

    The entry points print it as one paragraph and exit with status 1, without a
    traceback (unless --verbose).
    """


class SignalExit(BaseException):
    """The program was asked to stop by signal signum (SIGINT or SIGTERM); the entry points
    exit with status 128 + signum, as a shell reports a process ended by that signal, so
    that job controllers see the run as unfinished. A BaseException, as KeyboardInterrupt,
    so that no `except Exception` swallows it and every `finally` cleans up on the way."""

    def __init__(self, signum, message=""):
        super().__init__(message)
        self.signum = signum


def check_writable_dir(path, flag):
    """Create folder path if needed and make sure files can be written in it; raises
    Cifar10Error naming the flag otherwise (as root, permissions alone do not stop us)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise Cifar10Error(f"Cannot write to {flag}={path}: {e.strerror}. Pass a folder you can write to, "
                           "or fix its permissions.") from e


# TensorFlow's checkpoint functions read these in a path as a file-name pattern
# (TensorFlow issue 34290): a folder named with them never finds its own checkpoints.
GLOB_CHARACTERS = "*?[\\"


def check_folder_flag(path, flag):
    """Raise Cifar10Error if path, the value of flag, holds a glob character."""
    found = [c for c in GLOB_CHARACTERS if c in path]
    if found:
        raise Cifar10Error(f"{flag}={path} contains {' and '.join(repr(c) for c in found)}, which TensorFlow reads "
                           "as a file-name pattern when it looks for checkpoints (TensorFlow issue 34290): "
                           "checkpoints there would never be found again. Pass a folder whose path has none of "
                           f"{' '.join(GLOB_CHARACTERS)}.")


def _require(condition, message):
    if not condition:
        raise Cifar10Error(message)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; the trainers' flags map onto these fields.

    batch_size is per replica (per tower): a step sees batch_size x replicas examples.
    save_checkpoint_secs and save_checkpoint_steps: save when either is due; 0 turns
    that trigger off.
    """
    data_dir: str = DEFAULT_DATA_DIR
    train_dir: str = DEFAULT_TRAIN_DIR
    max_steps: int = 1_000_000
    batch_size: int = 128
    log_frequency: int = 10
    log_device_placement: bool = False
    save_checkpoint_secs: float = 600.0
    save_checkpoint_steps: int = 0
    save_summaries_steps: int = 100
    data_url: str = DATA_URL
    recipe: str = "tutorial"
    use_fp16: bool = None  # None: mixed precision where the hardware has fast 16-bit arithmetic

    def __post_init__(self):
        _require(self.max_steps >= 0, f"--max_steps={self.max_steps}: it must be 0 or more.")
        _require(self.batch_size >= 1, f"--batch_size={self.batch_size}: it must be at least 1.")
        _require(self.log_frequency >= 1, f"--log_frequency={self.log_frequency}: it must be at least 1.")
        _require(self.save_checkpoint_secs >= 0,
                 f"--save_checkpoint_secs={self.save_checkpoint_secs}: use 0 to turn it off, or a positive number.")
        _require(self.save_checkpoint_steps >= 0,
                 f"--save_checkpoint_steps={self.save_checkpoint_steps}: use 0 to turn it off, or a positive number.")
        _require(self.recipe in RECIPES, f"--recipe={self.recipe}: use one of {', '.join(RECIPES)}.")
        _require(self.save_summaries_steps >= 0, f"save_summaries_steps={self.save_summaries_steps}: it must be 0 (off) or more.")
        check_folder_flag(self.train_dir, "--train_dir")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Everything an evaluation needs; cifar10_eval.py's flags map onto these fields.

    eval_data is 'test' (test_batch.bin) or 'train_eval' (the training files).
    num_examples: how many examples of that set to evaluate, from its start; None, all.
    views: 1 (the central crop, the tutorial's), 2 (and its mirror image) or 10 (the
    central and four corner crops, each also mirrored): predictions are averaged over them.
    batch_size: images the model sees at once, views included.
    """
    data_dir: str = DEFAULT_DATA_DIR
    eval_dir: str = DEFAULT_EVAL_DIR
    checkpoint_dir: str = DEFAULT_TRAIN_DIR
    eval_data: str = "test"
    eval_interval_secs: float = 300.0
    num_examples: int = None
    run_once: bool = False
    batch_size: int = 1000
    data_url: str = DATA_URL
    views: int = 1

    def __post_init__(self):
        _require(self.views in EVAL_VIEW_COUNTS, f"--views={self.views}: use one of {EVAL_VIEW_COUNTS}.")
        _require(self.eval_data in ("test", "train_eval"),
                 f"--eval_data={self.eval_data}: use 'test' or 'train_eval'.")
        _require(self.num_examples is None or self.num_examples >= 1,
                 f"--num_examples={self.num_examples}: it must be at least 1 (leave it out for the whole set).")
        _require(self.batch_size >= 1, f"--batch_size={self.batch_size}: it must be at least 1.")
        # 0 would poll the folder without pause; inf cannot be slept.
        _require(0 < self.eval_interval_secs < float("inf"),
                 f"--eval_interval_secs={self.eval_interval_secs}: it must be a positive number of seconds "
                 "(use --run_once to evaluate once).")
        check_folder_flag(self.checkpoint_dir, "--checkpoint_dir")
        check_folder_flag(self.eval_dir, "--eval_dir")
