"""The checkpoint: what it holds, how it describes its run, and finding one that loads.

Every trainer, with any number of replicas, workers, recipe or precision, writes one
layout to <train_dir>/model.ckpt-<step>; the evaluator, the exporter and the predictor
read its moving averages:

  step            int64, the global step
  examples_seen   int64, the examples trained on so far: the schedule runs on epochs
                  (examples_seen / training records), so a run resumed with another
                  global batch (more towers, another --batch_size) continues it
  model/          the trained variables (float32), with the tutorial's names
  averages/       their exponential moving averages, which evaluation uses
  optimizer/      the momentum velocities
  loss_scale, good_steps   dynamic loss scaling's state (float16 compute only)
  description     JSON: the format version, the recipe and its values, the compute dtype,
                  the seed (null when unseeded), and with distillation the path of the
                  teacher checkpoint

Checkpoints of format 1 (before examples_seen, loss scaling state and description)
still resume: the examples they saw are then taken as step x the current global batch.

With --validation_records, <train_dir>/best/model.ckpt-<step> is the checkpoint of the
best validation precision so far, in the same layout plus

  validation      JSON: its precision @ 1 on the held-out records, how many of how
                  many were right, its step and epoch (see cifar10/validation.py)

It has its own state file and is kept one at a time: the run's retention never prunes it.

Folders are listed with os.listdir, never globbed (see errors.check_folder_flag).
"""
import datetime
import json
import os
import re

import tensorflow as tf

from cifar10.config import Recipe, override_flags
from cifar10.errors import Cifar10Error, check_folder_flag
from cifar10.model import FC_WEIGHT_DECAY, Cifar10Model

FORMAT_VERSION = 2
CHECKPOINT_NAME = "model.ckpt"
CHECKPOINTS_TO_KEEP = 5
BEST_DIR = "best"  # <train_dir>/best/: the checkpoint of the best validation precision
VALIDATION = "validation"  # the key of that checkpoint's record of its validation
DAMAGED_SUFFIX = ".damaged"  # a checkpoint that would not load is kept under this name
INITIAL_LOSS_SCALE = 2.0 ** 15  # float16 only
STEP, AVERAGES = "step", "averages"  # the keys that evaluation reads, of those TrainState writes
_EXAMPLES_SEEN_KEY = "examples_seen/.ATTRIBUTES/VARIABLE_VALUE"
_NUMBERED = re.compile(rf"^{re.escape(CHECKPOINT_NAME)}-(\d+)$")  # a checkpoint's name, without suffix
# What loading a checkpoint raises when its files are gone, damaged or hold another model.
LOAD_ERRORS = (tf.errors.OpError, AssertionError, ValueError)


class JsonFields(tf.train.experimental.PythonState):
    """A dict of JSON values kept in a checkpoint (fields): the description of the run
    that wrote it (format version, recipe name and values, compute dtype, seed), and in
    best/, the record of its validation (cifar10.validation). Empty until set or restored."""

    def __init__(self):
        self.fields = {}

    def serialize(self):
        return json.dumps(self.fields, sort_keys=True)

    def deserialize(self, string_value):
        self.fields = json.loads(string_value)


def describe(recipe, compute_dtype, seed=None, teacher=None):
    """The description fields of a run of recipe (a config.Recipe) in compute_dtype with
    seed (--seed, None when unseeded) and, with distillation, the path of its teacher
    checkpoint. The seed is for the record, and not compared on resuming: a resumed run
    draws its data order anew, from its own --seed and step. A resumed run distils from
    the teacher checkpoint recorded (see distillation.find_teacher)."""
    fields = {"format": FORMAT_VERSION, "recipe": recipe.name, "recipe_values": recipe.values(),
              "compute_dtype": tf.as_dtype(compute_dtype).name, "seed": seed}
    if teacher is not None:
        fields["teacher"] = teacher
    return fields


class TrainState(tf.Module):
    """What a training checkpoint holds (see the module docstring), as variables:
    create it inside a tf.distribute strategy's scope to mirror them."""

    def __init__(self, compute_dtype=tf.float32, fc_weight_decay=FC_WEIGHT_DECAY, conv_weight_decay=0.0, seed=None):
        super().__init__(name="train_state")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.examples_seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="examples_seen")
        self.model = Cifar10Model(compute_dtype, fc_weight_decay, conv_weight_decay, seed=seed)
        self.averages = Cifar10Model(seed=seed)  # seeded too: deterministic ops refuse unseeded random ones
        for average, variable in zip(self.averages.trainable_variables, self.model.trainable_variables):
            average.assign(variable)
        self.optimizer = tf.Module(name="momentum")
        self.optimizer.velocities = [tf.Variable(tf.zeros_like(v), trainable=False, name="velocity")
                                     for v in self.model.trainable_variables]
        # float16 gradients need the loss scaled up so that they do not underflow.
        self.loss_scale = tf.Variable(INITIAL_LOSS_SCALE if self.model.compute_dtype == tf.float16 else 1.0,
                                      trainable=False, name="loss_scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")
        self.description = JsonFields()

    def checkpoint(self, format_version=FORMAT_VERSION):
        """A tf.train.Checkpoint of this state in the layout of format_version."""
        format_1 = {STEP: self.step, "model": self.model, AVERAGES: self.averages, "optimizer": self.optimizer}
        if format_version == 1:
            return tf.train.Checkpoint(**format_1)
        return tf.train.Checkpoint(**format_1, examples_seen=self.examples_seen, loss_scale=self.loss_scale,
                                   good_steps=self.good_steps, description=self.description)

    def restore(self, path):
        """Load checkpoint path (format 1 or 2) into this state; returns its format version.
        Raises one of LOAD_ERRORS if it is gone, damaged, or holds another model."""
        reader = tf.train.load_checkpoint(path)  # reads the index: a damaged one fails here
        format_version = FORMAT_VERSION if reader.has_tensor(_EXAMPLES_SEEN_KEY) else 1
        self.checkpoint(format_version).read(path).assert_existing_objects_matched()
        return format_version


def restore_averages(model, path):
    """Load the moving-average weights of checkpoint path into model (a Cifar10Model);
    returns the checkpoint's step. Raises one of LOAD_ERRORS if it is gone, damaged or
    holds another model."""
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(**{STEP: step, AVERAGES: model}).read(path).assert_existing_objects_matched().expect_partial()
    return int(step.numpy())


def listed(directory, no_newer_than_state=False):
    """The checkpoints of directory as paths without suffix, newest (highest step) first:
    every model.ckpt-<step>.index there, and those that the state file ('checkpoint')
    names even if their files are gone. With no_newer_than_state, none newer than the
    state file's latest: a trainer names a checkpoint there only once it is complete,
    which matters to a reader beside a running trainer."""
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    steps = {_step_in(name[:-len(".index")]) for name in names if name.endswith(".index")}
    state = tf.train.get_checkpoint_state(directory) if "checkpoint" in names else None
    if state:
        steps.update(_step_in(os.path.basename(path)) for path in state.all_model_checkpoint_paths)
        latest = _step_in(os.path.basename(state.model_checkpoint_path))
        if no_newer_than_state and latest is not None:
            steps = {step for step in steps if step is not None and step <= latest}
    return [os.path.join(directory, f"{CHECKPOINT_NAME}-{step}") for step in sorted(steps - {None}, reverse=True)]


def _step_in(name):
    """The step of a checkpoint named model.ckpt-<step>; None for any other name."""
    match = _NUMBERED.match(name)
    return int(match.group(1)) if match else None


def step_of(path):
    """The step in a checkpoint path's name (model.ckpt-<step>)."""
    return int(path.rsplit("-", 1)[1])


def why_not_loaded(error):
    """A short reason why loading a checkpoint raised error (one of LOAD_ERRORS)."""
    if isinstance(error, tf.errors.NotFoundError):
        return "its files are missing"
    if isinstance(error, (AssertionError, ValueError)):
        return f"it does not hold this model's variables in their shapes: {str(error).splitlines()[0]}"
    return f"it is damaged: {str(error).strip().splitlines()[0]}"


def newest_loadable(directory, load, newer_than=-1, tried=None, no_newer_than_state=False):
    """Load the newest checkpoint of directory (above step newer_than) that loads.

    load(path) loads one and returns anything, or raises one of LOAD_ERRORS. After each
    failure the folder is listed again, so that a checkpoint written meanwhile comes
    first. tried (a set) collects the paths attempted, so that a caller polling the
    folder tries each only once. Returns (path, load's result, [(skipped path, reason)]),
    with path None when none loads.
    """
    tried = set() if tried is None else tried
    skipped = []
    while True:
        untried = [path for path in listed(directory, no_newer_than_state)
                   if path not in tried and step_of(path) > newer_than]
        if not untried:
            return None, None, skipped
        path = untried[0]
        tried.add(path)
        try:
            return path, load(path), skipped
        except LOAD_ERRORS as e:
            skipped.append((path, why_not_loaded(e)))


def none_loads_error(directory, flag, skipped):
    """The Cifar10Error for a folder without a checkpoint that loads: skipped lists
    (path, reason) of those that did not; empty, the folder has none."""
    if not skipped:
        return Cifar10Error(f"No checkpoint found in {flag}={directory}. Train first (cifar10_train.py "
                            f"--train_dir=...), or point {flag} at the trainer's --train_dir.")
    reasons = "; ".join(f"{path}: {reason}" for path, reason in skipped)
    return Cifar10Error(f"{skipped[0][0]} is the latest checkpoint in {flag}={directory}, but it cannot be "
                        f"loaded, nor can any older one ({reasons}). Nothing was changed. Pass a new {flag}, or "
                        "move the damaged checkpoints away and put good ones back.")


def say_skipped(skipped):
    """Print a line for each (checkpoint path, reason) that newest_loadable skipped."""
    for path, reason in skipped:
        print(f"{datetime.datetime.now()}: skipped {path}: {reason}", flush=True)


def restore_newest_averages(model, checkpoint_dir):
    """Load into model (a Cifar10Model) the moving averages of the newest checkpoint of
    checkpoint_dir (--checkpoint_dir) that loads, printing which newer ones were skipped
    and why; returns (its path, its step). Raises Cifar10Error when none loads."""
    check_folder_flag(checkpoint_dir, "--checkpoint_dir")
    path, step, skipped = newest_loadable(checkpoint_dir, lambda p: restore_averages(model, p))
    say_skipped(skipped)
    if path is None:
        raise none_loads_error(checkpoint_dir, "--checkpoint_dir", skipped)
    return path, step


def set_aside(path):
    """Rename the files of checkpoint path (which would not load) to <path>.damaged.*,
    so that a resumed run neither overwrites nor prunes them; returns the new prefix."""
    directory, name = os.path.split(path)
    kept = path + DAMAGED_SUFFIX
    for file_name in os.listdir(directory):
        if file_name.startswith(name + ".") and not file_name.startswith(name + DAMAGED_SUFFIX):
            os.replace(os.path.join(directory, file_name), kept + file_name[len(name):])
    return kept


def forget(directory, paths, latest):
    """Rewrite the state file of directory without paths, naming latest as the latest
    checkpoint, so that retention counts only checkpoints that load. The checkpoints kept
    keep their timestamps, by which CheckpointManager tells those it prunes."""
    state = tf.train.get_checkpoint_state(directory)
    names = [os.path.basename(p) for p in state.all_model_checkpoint_paths] if state else []
    preserved = state.last_preserved_timestamp if state else 0.0
    timestamps = list(state.all_model_checkpoint_timestamps) if state else []
    if len(timestamps) != len(names):  # written without them: all newer than the preserved ones
        timestamps = [preserved + 1] * len(names)
    dropped = {os.path.basename(p) for p in paths}
    kept = [(name, t) for name, t in zip(names, timestamps) if name not in dropped]
    if os.path.basename(latest) not in names:
        kept.append((os.path.basename(latest), max(preserved + 1, os.path.getmtime(latest + ".index"))))
    # Names relative to the folder, as CheckpointManager writes them, so that it can move.
    tf.compat.v1.train.update_checkpoint_state(
        directory, os.path.basename(latest), all_model_checkpoint_paths=[name for name, _ in kept],
        all_model_checkpoint_timestamps=[t for _, t in kept], last_preserved_timestamp=preserved)


def saved_recipe_values(saved):
    """The recipe values {field: value} of a checkpoint's saved description fields. A
    value it lacks, from before its field existed, was the field's default (see
    config.Recipe)."""
    return {**Recipe().values(), **saved.get("recipe_values", {})}


def saved_recipe_flags(saved):
    """The trainer's flags, one string, that give the recipe of a checkpoint's saved
    description fields: '--recipe=<name>', a flag for each value it changed, and the
    --teacher_dir of its teacher checkpoint, if any."""
    name = saved.get("recipe")
    teacher = [f"--teacher_dir={os.path.dirname(saved['teacher'])}"] if saved.get("teacher") else []
    return " ".join([f"--recipe={name}", *override_flags(name, saved_recipe_values(saved)), *teacher])


def recipe_differences(saved, recipe):
    """How recipe (a config.Recipe) differs from a checkpoint's saved description fields:
    a list of 'name: saved -> now' strings, empty if it is the same."""
    saved_values = saved_recipe_values(saved)
    changes = [f"{key}: {saved_values.get(key)!r} -> {value!r}" for key, value in recipe.values().items()
               if saved_values.get(key) != value]
    if saved.get("recipe") != recipe.name:
        changes.insert(0, f"recipe: {saved.get('recipe')!r} -> {recipe.name!r}")
    return changes
