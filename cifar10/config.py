"""Configuration of the CIFAR-10 programs, in one place.

Each setting is declared once, as a field of one of these small, frozen dataclasses:
its name is the flag's, its type and default the flag's, its `help` metadata the flag's
help (cifar10.cli builds the flags from them), and __post_init__ is the one place that
checks the values. The entry-point scripts turn their flags into a config object and
pass it into the library; nothing in the library reads flags or global state.
"""
import dataclasses

from cifar10.errors import Cifar10Error, check_folder_flag

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
    name: str = "custom"
    epochs: float = None
    learning_rate: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    warmup_epochs: float = 0.0
    fc_weight_decay: float = 0.004  # L2 coefficient of local3 and local4
    conv_weight_decay: float = 0.0  # L2 coefficient of conv1 and conv2
    label_smoothing: float = 0.0    # weight of the uniform distribution in the targets
    cutout: int = 0                 # side in pixels of a square blanked in each training image

    def values(self):
        """The recipe's settings, {field: value}, without its name."""
        return {key: value for key, value in dataclasses.asdict(self).items() if key != "name"}


RECIPES = {recipe.name: recipe for recipe in (
    Recipe("tutorial"),
    # Tuned for time to accuracy on this network (see README.md, "Speed").
    Recipe("fast", epochs=110, learning_rate=0.03, momentum=0.9, nesterov=True, warmup_epochs=2,
           fc_weight_decay=0.001),
    # Longer, regularized against the over-fitting that ends "fast": the tutorial's weight
    # decay on local3 and local4, weight decay on the convolutions, label smoothing, cutout.
    Recipe("long", epochs=300, learning_rate=0.03, momentum=0.9, nesterov=True, warmup_epochs=2,
           fc_weight_decay=0.004, conv_weight_decay=0.001, label_smoothing=0.1, cutout=8),
)}


def setting(default, help):
    """A config field that is also a flag: --<field name>=<value>, explained by help."""
    return dataclasses.field(default=default, metadata={"help": help})


def _require(condition, message):
    if not condition:
        raise Cifar10Error(message)


DATA_DIR_HELP = "Folder of the CIFAR-10 data: cifar-10-batches-bin/, or the archive to extract or download."
DATA_URL_HELP = "Where to download the archive from when --data_dir lacks it (a mirror)."


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs: the trainers' flags.

    batch_size is per replica: a step sees batch_size x replicas examples. recipe may be
    given by name; the config then holds the Recipe itself.
    """
    data_dir: str = setting(DEFAULT_DATA_DIR, DATA_DIR_HELP)
    train_dir: str = setting(DEFAULT_TRAIN_DIR, "Folder for checkpoints and event logs; a run resumes from the "
                                                "checkpoints there.")
    max_steps: int = setting(1_000_000, "Train until the step count reaches this (resumed runs included).")
    batch_size: int = setting(128, "Images per batch, per replica (each tower's, with several).")
    log_frequency: int = setting(10, "How often, in steps, to log the loss and speed.")
    log_device_placement: bool = setting(False, "Log the device each operation runs on.")
    save_checkpoint_secs: float = setting(600.0, "Save a checkpoint at least this often, in seconds (0: off).")
    save_checkpoint_steps: int = setting(0, "Also save every this many steps (0: off).")
    save_summaries_steps: int = setting(100, "Write histograms and images to TensorBoard every this many steps "
                                             "(0: off).")
    recipe: Recipe = setting(RECIPES["tutorial"], f"How to train: {', '.join(RECIPES)}. 'tutorial': the original "
                                                  "schedule, until --max_steps; the others: momentum, warm-up and "
                                                  "linear decay over a fixed number of epochs (README.md, Speed).")
    use_fp16: bool = setting(None, "Mixed precision: bfloat16 on a CPU, float16 with loss scaling on a GPU; "
                                   "variables and moving averages stay float32. Default: on where the hardware "
                                   "computes in 16 bits natively (a GPU, or a CPU with AMX or AVX512-BF16).")
    data_url: str = setting(DATA_URL, DATA_URL_HELP)

    def __post_init__(self):
        if isinstance(self.recipe, str):
            _require(self.recipe in RECIPES, f"--recipe={self.recipe}: use one of {', '.join(RECIPES)}.")
            object.__setattr__(self, "recipe", RECIPES[self.recipe])
        _require(self.max_steps >= 0, f"--max_steps={self.max_steps}: it must be 0 or more.")
        _require(self.batch_size >= 1, f"--batch_size={self.batch_size}: it must be at least 1.")
        _require(self.log_frequency >= 1, f"--log_frequency={self.log_frequency}: it must be at least 1.")
        _require(self.save_checkpoint_secs >= 0,
                 f"--save_checkpoint_secs={self.save_checkpoint_secs}: use 0 to turn it off, or a positive number.")
        _require(self.save_checkpoint_steps >= 0,
                 f"--save_checkpoint_steps={self.save_checkpoint_steps}: use 0 to turn it off, or a positive number.")
        _require(self.save_summaries_steps >= 0,
                 f"--save_summaries_steps={self.save_summaries_steps}: it must be 0 (off) or more.")
        check_folder_flag(self.train_dir, "--train_dir")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Everything an evaluation needs: cifar10_eval.py's flags."""
    eval_dir: str = setting(DEFAULT_EVAL_DIR, "Folder to write event logs to.")
    eval_data: str = setting("test", "Evaluate test_batch.bin ('test') or the training files ('train_eval').")
    checkpoint_dir: str = setting(DEFAULT_TRAIN_DIR, "Folder the trainer writes checkpoints to (its --train_dir).")
    eval_interval_secs: float = setting(300.0, "How often, in seconds, to look for a new checkpoint.")
    num_examples: int = setting(None, "How many examples of the set to evaluate, from its start (default: all).")
    run_once: bool = setting(False, "Evaluate the latest checkpoint once and exit.")
    data_dir: str = setting(DEFAULT_DATA_DIR, DATA_DIR_HELP)
    batch_size: int = setting(1000, "Images the model sees at once, views included (does not change the result).")
    views: int = setting(1, "Views of each image to average predictions over: 1, the central 24x24 crop (the "
                            "tutorial's); 2, it and its mirror image; 10, the central and four corner crops and "
                            "their mirror images (cuda-convnet's multi-view test).")
    data_url: str = setting(DATA_URL, DATA_URL_HELP)

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


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What cifar10_export.py needs: its flags."""
    checkpoint_dir: str = setting(DEFAULT_TRAIN_DIR, "Folder the trainer writes checkpoints to (its --train_dir); "
                                                     "its newest checkpoint that loads is exported.")
    export_dir: str = setting(DEFAULT_EXPORT_DIR, "The model's base path: the SavedModel goes into a subfolder "
                                                  "named by the step.")

    def __post_init__(self):
        check_folder_flag(self.checkpoint_dir, "--checkpoint_dir")
        check_folder_flag(self.export_dir, "--export_dir")
