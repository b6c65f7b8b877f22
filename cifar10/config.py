"""Configuration of the CIFAR-10 programs, in one place.

Each setting is declared once, as a field of one of these small, frozen dataclasses:
its name is the flag's, its type and default the flag's, its `help` metadata the flag's
help (cifar10.cli builds the flags from them), and __post_init__ is the one place that
checks the values. The entry-point scripts turn their flags into a config object and
pass it into the library; nothing in the library reads flags or global state.
"""
import dataclasses
import math
import os

from cifar10.errors import Cifar10Error, check_folder_flag
from cifar10.shapes import CROPPED_SIZE, IMAGE_SIZE, MAX_CROP_SHIFT

DEFAULT_DATA_DIR = "/tmp/cifar10_data"
DEFAULT_TRAIN_DIR = "/tmp/cifar10_train"
DEFAULT_EVAL_DIR = "/tmp/cifar10_eval"
DEFAULT_EXPORT_DIR = "/tmp/cifar10_model"
DEFAULT_MAX_STEPS = 1_000_000  # the tutorial's: in effect, until stopped
DATA_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
# Views of each image that evaluation can average over: the central crop; it and its
# mirror image; or, as cuda-convnet's multi-view test, the central and four corner
# crops, each also mirrored.
EVAL_VIEW_COUNTS = (1, 2, 10)
TEACHER_VIEWS = 10  # a distillation teacher's predictions are the mean over this many views
EVAL_DEVICES = ("auto", "cpu", "gpu")
# The flags of one schedule, which the recipes of the other do not take.
EPOCH_SCHEDULE_FLAGS = ("epochs", "warmup_epochs", "swa_epochs", "swa_learning_rate")
TUTORIAL_SCHEDULE_FLAGS = ("num_epochs_per_decay", "learning_rate_decay_factor")
MAX_SEED = 2**31 - 1  # int32's largest, a seed that every generator takes
MUON_LAYERS = ("conv1", "conv2", "local3", "local4")  # the hidden layers, whose kernels Muon can turn


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train: the optimizer, the learning-rate schedule and the regularization.

    epochs None is the tutorial's open-ended schedule (until --max_steps): learning_rate,
    multiplied by learning_rate_decay_factor every num_epochs_per_decay epochs (a
    staircase). Otherwise learning_rate is the peak, reached by a linear warm-up over
    warmup_epochs (but at least 300 steps) and followed by a linear decay to 0 at epochs;
    with swa_learning_rate, a linear decay to it where the last swa_epochs begin, and
    held there to the end.

    Checkpoints record a run's recipe values (cifar10.checkpoints.describe), and one
    written before a field existed is taken to have had the field's default: a new
    field's default must be what the code did before it.
    """
    name: str = "custom"
    # The batch per replica when --batch_size is not given: the one that learning_rate was
    # tuned at. Not one of values(), so neither recorded nor compared on resuming: a run
    # may resume with another batch (cifar10.checkpoints).
    batch_size: int = 128
    epochs: float = None
    learning_rate: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    warmup_epochs: float = 0.0
    fc_weight_decay: float = 0.004  # L2 coefficient of local3 and local4
    conv_weight_decay: float = 0.0  # L2 coefficient of conv1 and conv2
    label_smoothing: float = 0.0    # weight of the uniform distribution in the targets
    cutout: int = 0                 # side in pixels of a square blanked in each training image
    mixup: float = 0.0              # alpha of mixup's Beta(alpha, alpha) mixing weight; 0: none
    random_contrast: bool = True    # the tutorial's random contrast factor for each training image
    crop_shift: int = MAX_CROP_SHIFT  # pixels a training crop can lie from the centre, across and down
    muon: bool = False  # Muon's orthogonalized updates for the kernels of muon_layers
    muon_layers: str = ",".join(MUON_LAYERS)  # comma-separated names, each one of MUON_LAYERS
    # The weight decay of Muon's kernels applied to the weights beside the orthogonalized
    # step (decoupled, as AdamW's), not through the loss, whose decay gradient Muon turns.
    muon_decoupled_decay: bool = False
    num_epochs_per_decay: float = 350.0     # epochs between two decays of the tutorial schedule
    learning_rate_decay_factor: float = 0.1  # what each of them multiplies the learning rate by
    # Of the weights, which the evaluator reads: each step moves the averages by
    # (1 - decay) towards the weights (averaging over about 1 / (1 - decay) steps).
    moving_average_decay: float = 0.9999
    # Stochastic weight averaging (Izmailov et al., 2018), at every step: over the last
    # swa_epochs, the averages are the plain mean of the weights, in place of the moving
    # ones; 0: none. swa_learning_rate: the learning rate held over them; 0: the schedule's.
    swa_epochs: float = 0.0
    swa_learning_rate: float = 0.0
    # Distillation: the weight of a teacher's predictions in each training target, the
    # label's one-hot vector having the rest; 0: none (see TrainConfig.teacher_dir).
    distillation: float = 0.0

    def muon_layer_names(self):
        """The names of the layers whose kernels' updates Muon turns (a tuple of str):
        muon_layers split at its commas, () without muon."""
        return tuple(self.muon_layers.split(",")) if self.muon else ()

    def decoupled_decay_layer_names(self):
        """The names of the layers whose kernels take their weight decay beside Muon's step,
        out of the loss (a tuple of str): Muon's layers with muon_decoupled_decay, else ()."""
        return self.muon_layer_names() if self.muon_decoupled_decay else ()

    def values(self):
        """The recipe's settings, {field: value}, without its name and its batch_size."""
        return {key: value for key, value in dataclasses.asdict(self).items() if key not in ("name", "batch_size")}

    def override_flags(self):
        """The flags ['--<field>=<value>', ...] that change the recipe of this name in
        RECIPES into this one: what flags overrode (see the function override_flags)."""
        return override_flags(self.name, self.values())


def override_flags(name, values):
    """The flags ['--<field>=<value>', ...] that change RECIPES[name] into a recipe of
    values ({field: value}, as Recipe.values() or a checkpoint's description holds them),
    one for each value that differs; [] for a name not in RECIPES."""
    base = RECIPES.get(name)
    if base is None:
        return []
    return [f"--{key}={_flag_text(value)}" for key, value in values.items() if getattr(base, key, None) != value]


def _flag_text(value):
    """How a flag's value is written: booleans as true and false, whole floats as integers."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


RECIPES = {recipe.name: recipe for recipe in (
    Recipe("tutorial"),
    # The best of the levers tried over 30 epochs, 30 minutes on 2 CPU cores (README.md,
    # "Thirty minutes on two CPU cores"): "fast" cut to 30 epochs, with the tutorial's
    # weight decay on local3 and local4, "long"'s on the convolutions, and without the
    # tutorial's random contrast.
    Recipe("short", epochs=30, learning_rate=0.03, momentum=0.9, nesterov=True, warmup_epochs=2,
           fc_weight_decay=0.004, conv_weight_decay=0.001, random_contrast=False),
    # Tuned for time to accuracy on this network (see README.md, "Speed").
    Recipe("fast", epochs=110, learning_rate=0.03, momentum=0.9, nesterov=True, warmup_epochs=2,
           fc_weight_decay=0.001),
    # Longer, regularized against the over-fitting that ends "fast": the tutorial's weight
    # decay on local3 and local4, weight decay on the convolutions, label smoothing, cutout.
    Recipe("long", epochs=300, learning_rate=0.03, momentum=0.9, nesterov=True, warmup_epochs=2,
           fc_weight_decay=0.004, conv_weight_decay=0.001, label_smoothing=0.1, cutout=8),
    # The best in 30 minutes on 2 CPU cores (README.md, "Muon's weight decay decoupled,
    # three seeds"): "short" over 104 epochs at batch 1024, its peak learning rate scaled
    # with the batch, label smoothing, and Muon with its weight decay beside its step.
    Recipe("muon", batch_size=1024, epochs=104, learning_rate=0.24, momentum=0.9, nesterov=True, warmup_epochs=2,
           fc_weight_decay=0.004, conv_weight_decay=0.001, label_smoothing=0.1, random_contrast=False, muon=True,
           muon_decoupled_decay=True),
)}


def setting(default, help):
    """A config field that is also a flag: --<field name>=<value>, explained by help."""
    return dataclasses.field(default=default, metadata={"help": help})


def _require(condition, message):
    if not condition:
        raise Cifar10Error(message)


def _check_schedule_flags(recipe, flags):
    """Refuse flags (['--<field>=<value>']) of the schedule that recipe does not have."""
    them = "them" if len(flags) > 1 else "it"
    if recipe.epochs is None:
        epoch_recipes = " or ".join(f"--recipe={name}" for name, r in RECIPES.items() if r.epochs is not None)
        _require(not flags, f"{' '.join(flags)}: the {recipe.name} recipe has no schedule over a number of epochs: "
                            "it trains until --max_steps, multiplying its learning rate by "
                            "--learning_rate_decay_factor every --num_epochs_per_decay epochs. Pass "
                            f"{epoch_recipes} with {them}, or leave {them} out.")
    else:
        _require(not flags, f"{' '.join(flags)}: only the tutorial recipe decays its learning rate in steps; the "
                            f"{recipe.name} recipe decays it linearly to 0 at its last epoch (--epochs, after "
                            f"--warmup_epochs of warm-up). Pass --recipe=tutorial with {them}, or leave {them} out.")


def _check_recipe(recipe):
    """Raise Cifar10Error, naming the flag, for a recipe value out of its range."""
    def check(key, condition, requirement):
        _require(condition, f"--{key}={_flag_text(getattr(recipe, key))}: {requirement}.")
    # Comparisons with NaN are false, and infinities are refused: every value is finite.
    check("learning_rate", 0 < recipe.learning_rate < math.inf, "it must be a positive finite number")
    check("momentum", 0 <= recipe.momentum < 1, "it must be at least 0 (plain SGD) and below 1")
    check("warmup_epochs", 0 <= recipe.warmup_epochs < math.inf, "it must be 0 or more, and finite")
    if recipe.epochs is not None:
        check("epochs", recipe.warmup_epochs < recipe.epochs < math.inf,
              f"it must be finite and more than the epochs of warm-up (--warmup_epochs={_flag_text(recipe.warmup_epochs)})")
    check("fc_weight_decay", 0 <= recipe.fc_weight_decay < math.inf, "it must be 0 (none) or more, and finite")
    check("conv_weight_decay", 0 <= recipe.conv_weight_decay < math.inf, "it must be 0 (none) or more, and finite")
    check("label_smoothing", 0 <= recipe.label_smoothing < 1, "it must be at least 0 (none) and below 1")
    check("cutout", 0 <= recipe.cutout <= CROPPED_SIZE,
          f"it must be 0 (none) to {CROPPED_SIZE}, the side of the image that the network sees")
    check("mixup", 0 <= recipe.mixup < math.inf, "it must be 0 (none) or more, and finite")
    check("crop_shift", 0 <= recipe.crop_shift <= MAX_CROP_SHIFT,
          f"it must be 0 (the central crop) to {MAX_CROP_SHIFT} (any {CROPPED_SIZE}x{CROPPED_SIZE} crop of the "
          f"{IMAGE_SIZE}x{IMAGE_SIZE} image)")
    check("num_epochs_per_decay", 0 < recipe.num_epochs_per_decay < math.inf, "it must be a positive finite number")
    check("learning_rate_decay_factor", 0 < recipe.learning_rate_decay_factor <= 1,
          "it must be above 0 and at most 1 (no decay)")
    check("moving_average_decay", 0 <= recipe.moving_average_decay < 1,
          "it must be at least 0 (the averages are the weights) and below 1")
    if recipe.epochs is not None:  # the tutorial recipe has neither (see _check_schedule_flags)
        after_warmup = recipe.epochs - recipe.warmup_epochs
        check("swa_epochs", 0 <= recipe.swa_epochs < after_warmup,
              f"it must be 0 (none) or more, and less than the epochs after the warm-up ({_flag_text(after_warmup)})")
        check("swa_learning_rate", 0 <= recipe.swa_learning_rate < math.inf, "it must be 0 (the schedule's) or more, "
              "and finite")
        check("swa_learning_rate", not recipe.swa_learning_rate or recipe.swa_epochs,
              "it is the learning rate of the last --swa_epochs, which are none: pass --swa_epochs too")
    layers = recipe.muon_layers.split(",")
    check("muon_layers", set(layers) <= set(MUON_LAYERS) and len(set(layers)) == len(layers),
          f"it must name one or more of {', '.join(MUON_LAYERS)}, each once, with commas between and no "
          "spaces")
    check("muon_layers", recipe.muon or recipe.muon_layers == ",".join(MUON_LAYERS),
          "it names the kernels that Muon turns, and Muon is off: pass --muon=true too")
    check("muon_decoupled_decay", recipe.muon or not recipe.muon_decoupled_decay,
          "it is the weight decay of the kernels that Muon turns, and Muon is off: pass --muon=true too")
    check("distillation", 0 <= recipe.distillation <= 1,
          "it must be 0 (none) to 1 (the teacher's predictions alone, without the labels)")


DATA_DIR_HELP = "Folder of the CIFAR-10 data: cifar-10-batches-bin/, or the archive to extract or download."
DATA_URL_HELP = "Where to download the archive from when --data_dir lacks it (a mirror)."


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs: the trainers' flags.

    batch_size is per replica: a step sees batch_size x replicas examples; None is the
    recipe's. recipe may be given by name; the config then holds the Recipe itself.
    """
    data_dir: str = setting(DEFAULT_DATA_DIR, DATA_DIR_HELP)
    train_dir: str = setting(DEFAULT_TRAIN_DIR, "Folder for checkpoints and event logs; a run resumes from the "
                                                "checkpoints there.")
    max_steps: int = setting(DEFAULT_MAX_STEPS, "Train until the step count reaches this (resumed runs included).")
    batch_size: int = setting(None, "Images per batch, per replica (each tower's, with several); a recipe's peak "
                                    "learning rate was tuned at its own (default: the recipe's: "
                                    f"{', '.join(f'{name} {r.batch_size}' for name, r in RECIPES.items())}).")
    log_frequency: int = setting(10, "How often, in steps, to log the loss and speed.")
    log_device_placement: bool = setting(False, "Log the device each operation runs on.")
    save_checkpoint_secs: float = setting(600.0, "Save a checkpoint at least this often, in seconds (0: off).")
    save_checkpoint_steps: int = setting(0, "Also save every this many steps (0: off).")
    save_summaries_steps: int = setting(100, "Write histograms and images to TensorBoard every this many steps "
                                             "(0: off).")
    validation_records: int = setting(0, "Hold the last this many training records (the end of data_batch_5.bin "
                                         "first) out of training and validate on them; keep the checkpoint of the "
                                         "best validation precision in <train_dir>/best/ (0: none held out).")
    validate_every_epochs: float = setting(1.0, "With --validation_records: validate every this many epochs, and "
                                                "at the end (a positive number; 0.5 is twice an epoch).")
    recipe: Recipe = setting(RECIPES["tutorial"], f"How to train: {', '.join(RECIPES)}. 'tutorial': the original "
                                                  "schedule, until --max_steps; the others: momentum, warm-up and "
                                                  "linear decay over a fixed number of epochs (README.md, Speed).")
    # Each of these overrides one value of the recipe (None: the recipe's own); the
    # checkpoint records the values that result.
    learning_rate: float = setting(None, "The learning rate: the tutorial schedule's initial one, the others' peak "
                                         "(default: the recipe's).")
    epochs: float = setting(None, "Epochs to train, where the learning rate has decayed linearly to 0; not with "
                                  "--recipe=tutorial, which trains until --max_steps (default: the recipe's).")
    momentum: float = setting(None, "Momentum coefficient, at least 0 and below 1; 0 is plain SGD (default: the "
                                    "recipe's).")
    nesterov: bool = setting(None, "Nesterov momentum (default: the recipe's).")
    warmup_epochs: float = setting(None, "Epochs of linear warm-up to the peak learning rate (at least 300 steps); "
                                         "not with --recipe=tutorial (default: the recipe's).")
    fc_weight_decay: float = setting(None, "L2 weight decay coefficient of local3 and local4 (default: the "
                                           "recipe's).")
    conv_weight_decay: float = setting(None, "L2 weight decay coefficient of conv1 and conv2 (default: the "
                                             "recipe's).")
    label_smoothing: float = setting(None, "Part of each training target spread evenly over all classes, at least "
                                           "0 and below 1 (default: the recipe's).")
    cutout: int = setting(None, f"Side in pixels (0 to {CROPPED_SIZE}) of a square blanked at a random place in "
                                "each training image; 0: none (default: the recipe's).")
    mixup: float = setting(None, "Mixup: train on each batch blended with itself in another order, the targets "
                                 "alike, by a weight drawn from Beta(alpha, alpha) for each batch; this alpha, 0 for "
                                 "none (default: the recipe's).")
    random_contrast: bool = setting(None, "The tutorial's random contrast: each training image's deviations from "
                                          "its channels' means multiplied by a random factor; false: none (default: "
                                          "the recipe's, true).")
    crop_shift: int = setting(None, f"Pixels (0 to {MAX_CROP_SHIFT}) by which each random {CROPPED_SIZE}x"
                                    f"{CROPPED_SIZE} training crop can lie from the image's centre, across and "
                                    f"down; {MAX_CROP_SHIFT}, the tutorial's: any crop of the {IMAGE_SIZE}x"
                                    f"{IMAGE_SIZE} image; 0: always the central one (default: the recipe's, "
                                    f"{MAX_CROP_SHIFT}).")
    muon: bool = setting(None, "Muon (Jordan et al., 2024): each step's momentum update of the kernels of "
                               "--muon_layers, as a [fan-in, outputs] matrix, has its singular values "
                               "brought to about 1 by five Newton-Schulz steps and is then scaled back to its own "
                               "length: the direction changes, the step's length and schedule stay; the biases and "
                               "softmax_linear as before (default: the recipe's, false).")
    muon_layers: str = setting(None, "With --muon: the layers whose kernels it turns, their names with commas "
                                     f"between, of {', '.join(MUON_LAYERS)} (default: the recipe's, all four).")
    muon_decoupled_decay: bool = setting(None, "With --muon: the weight decay of Muon's kernels taken out of the "
                                               "loss (whose decay gradient Muon would turn with the rest) and "
                                               "applied beside the turned step, each weight shrunk by the "
                                               "learning rate x its layer's decay / (1 - momentum) x itself "
                                               "each step; the loss logged then leaves their decay out "
                                               "(default: the recipe's, false).")
    num_epochs_per_decay: float = setting(None, "--recipe=tutorial only: epochs between two decays of the learning "
                                                "rate (default: the recipe's, 350).")
    learning_rate_decay_factor: float = setting(None, "--recipe=tutorial only: what each decay multiplies the "
                                                      "learning rate by, above 0 and at most 1 (default: the "
                                                      "recipe's, 0.1).")
    moving_average_decay: float = setting(None, "Decay of the moving averages of the weights, which evaluation "
                                                "uses, at least 0 and below 1: they average over about 1 / (1 - "
                                                "decay) steps, fewer early in a run (default: the recipe's, "
                                                "0.9999).")
    swa_epochs: float = setting(None, "Stochastic weight averaging over the last this many epochs: the averages "
                                      "that evaluation uses are then the plain mean of the weights after each step, "
                                      "in place of the moving averages; 0: none. Not with --recipe=tutorial, which "
                                      "has no last epoch (default: the recipe's, 0).")
    swa_learning_rate: float = setting(None, "With --swa_epochs: the learning rate held over them, the schedule "
                                             "decaying linearly to it from the peak before them; 0: the schedule "
                                             "goes on decaying to 0 (default: the recipe's, 0).")
    distillation: float = setting(None, "Distillation: the weight, 0 to 1, of the teacher's predictions (see "
                                        "--teacher_dir) in each training target, the label having the rest; 0: "
                                        "none (default: the recipe's, 0).")
    teacher_dir: str = setting(None, "With --distillation: the teacher's training folder (its --train_dir). Its "
                                     f"newest checkpoint that loads, when the run starts, is the teacher: the mean "
                                     f"of its moving averages' probabilities over {TEACHER_VIEWS} views of each "
                                     "training record (as cifar10_eval.py --views=10) is that record's target. A "
                                     "resumed run keeps its teacher checkpoint, found by name in this folder.")
    seed: int = setting(None, f"Seed (0 to {MAX_SEED}) of every random number training draws: the initial "
                              "weights, the data order, the augmentation. Default: none, a different run each time. "
                              "See --deterministic.")
    deterministic: bool = setting(False, "Deterministic TensorFlow ops (slower, on a GPU especially), so that a run "
                                         "with the same --seed on the same hardware and software writes the same "
                                         "weights; needs --seed.")
    use_fp16: bool = setting(None, "Mixed precision: bfloat16 on a CPU, float16 with loss scaling on a GPU; "
                                   "variables and moving averages stay float32. Default: on where the hardware "
                                   "computes in 16 bits natively (a GPU, or a CPU with AMX or AVX512-BF16).")
    data_url: str = setting(DATA_URL, DATA_URL_HELP)

    def __post_init__(self):
        if isinstance(self.recipe, str):
            _require(self.recipe in RECIPES, f"--recipe={self.recipe}: use one of {', '.join(RECIPES)}.")
            object.__setattr__(self, "recipe", RECIPES[self.recipe])
        given = {key: getattr(self, key) for key in self.recipe.values() if getattr(self, key) is not None}
        other_schedule = EPOCH_SCHEDULE_FLAGS if self.recipe.epochs is None else TUTORIAL_SCHEDULE_FLAGS
        _check_schedule_flags(self.recipe, [f"--{key}={_flag_text(given[key])}" for key in other_schedule
                                            if key in given])
        object.__setattr__(self, "recipe", dataclasses.replace(self.recipe, **given))
        _check_recipe(self.recipe)
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", self.recipe.batch_size)
        _require(self.seed is None or 0 <= self.seed <= MAX_SEED,
                 f"--seed={self.seed}: use a whole number from 0 to {MAX_SEED}.")
        _require(self.seed is not None or not self.deterministic,
                 "--deterministic needs --seed: deterministic ops repeat a run only if its random numbers (initial "
                 "weights, data order, augmentation) repeat too. Pass --seed=N as well, the same N for each run "
                 "that should give the same weights.")
        _require(self.max_steps >= 0, f"--max_steps={self.max_steps}: it must be 0 or more.")
        _require(self.batch_size >= 1, f"--batch_size={self.batch_size}: it must be at least 1.")
        _require(self.log_frequency >= 1, f"--log_frequency={self.log_frequency}: it must be at least 1.")
        _require(self.save_checkpoint_secs >= 0,
                 f"--save_checkpoint_secs={self.save_checkpoint_secs}: use 0 to turn it off, or a positive number.")
        _require(self.save_checkpoint_steps >= 0,
                 f"--save_checkpoint_steps={self.save_checkpoint_steps}: use 0 to turn it off, or a positive number.")
        _require(self.save_summaries_steps >= 0,
                 f"--save_summaries_steps={self.save_summaries_steps}: it must be 0 (off) or more.")
        _require(self.validation_records >= 0,
                 f"--validation_records={self.validation_records}: it must be 0 (none held out) or more.")
        # nan fails both comparisons; inf epochs cannot be counted in examples.
        _require(0 < self.validate_every_epochs < float("inf"),
                 f"--validate_every_epochs={self.validate_every_epochs}: it must be a positive number of epochs, "
                 "such as 1 or 0.5.")
        check_folder_flag(self.train_dir, "--train_dir")
        self._check_teacher()

    def _check_teacher(self):
        distillation = _flag_text(self.recipe.distillation)
        if not self.recipe.distillation:
            _require(self.teacher_dir is None, f"--teacher_dir={self.teacher_dir} is the teacher of distillation, "
                                               f"which is off (--distillation={distillation}): pass "
                                               "--distillation=W too (0 < W <= 1), or leave --teacher_dir out.")
            return
        _require(self.teacher_dir is not None, f"--distillation={distillation} needs a teacher: pass "
                                               "--teacher_dir=DIR, the --train_dir of another run.")
        check_folder_flag(self.teacher_dir, "--teacher_dir")
        _require(os.path.realpath(self.teacher_dir) != os.path.realpath(self.train_dir),
                 f"--teacher_dir={self.teacher_dir} is --train_dir: a run cannot be its own teacher. Pass the "
                 "--train_dir of another run.")


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
    device: str = setting("auto", "Where to evaluate: 'auto', a GPU where there is one, else the CPU; 'cpu', off "
                                  "the GPU entirely (it takes no GPU memory, leaving the GPU to a trainer beside "
                                  "it); 'gpu', a GPU or an error.")

    def __post_init__(self):
        _require(self.views in EVAL_VIEW_COUNTS, f"--views={self.views}: use one of {EVAL_VIEW_COUNTS}.")
        _require(self.device in EVAL_DEVICES, f"--device={self.device}: use one of {', '.join(EVAL_DEVICES)}.")
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


# The TensorFlow Lite models an export can add to its version folder, and how many
# training records (from the start of the training files) calibrate the int8 one.
TFLITE_FILE = "model.tflite"
INT8_TFLITE_FILE = "model_int8.tflite"
CALIBRATION_RECORDS = 300


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What cifar10_export.py needs: its flags.

    tflite None means: on with quantize, else off (the config then holds the bool).
    """
    checkpoint_dir: str = setting(DEFAULT_TRAIN_DIR, "Folder the trainer writes checkpoints to (its --train_dir); "
                                                     "its newest checkpoint that loads is exported.")
    export_dir: str = setting(DEFAULT_EXPORT_DIR, "The model's base path: the SavedModel goes into a subfolder "
                                                  "named by the step.")
    tflite: bool = setting(None, f"Also write {TFLITE_FILE} next to the SavedModel: its serving_default signature "
                                 "(uint8 images in, the same preprocessing inside, probabilities and classes out) "
                                 "for TensorFlow Lite, in float32. Default: on with --quantize, else off.")
    quantize: bool = setting(False, f"Also write {INT8_TFLITE_FILE}: the same TensorFlow Lite model with int8 "
                                    "weights and activations (but for the per-image standardization and the "
                                    "squares inside the normalizations, which stay float32), calibrated on the "
                                    f"first {CALIBRATION_RECORDS} training records of "
                                    f"--data_dir. Implies --tflite ({TFLITE_FILE} is written too).")
    data_dir: str = setting(DEFAULT_DATA_DIR, DATA_DIR_HELP)
    data_url: str = setting(DATA_URL, DATA_URL_HELP)

    def __post_init__(self):
        if self.tflite is None:
            object.__setattr__(self, "tflite", self.quantize)
        _require(self.tflite or not self.quantize,
                 f"--quantize writes {INT8_TFLITE_FILE} next to {TFLITE_FILE}, so it implies --tflite: leave out "
                 "--tflite=false (or --quantize).")
        check_folder_flag(self.checkpoint_dir, "--checkpoint_dir")
        check_folder_flag(self.export_dir, "--export_dir")
