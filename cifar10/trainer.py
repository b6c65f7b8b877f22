"""Training: the compiled step, the loop, checkpoints and TensorBoard summaries.

One code path serves every trainer: a tf.distribute strategy decides where the step
runs (one device, N towers of MirroredStrategy, or several machines with
MultiWorkerMirroredStrategy). Each replica computes the loss of its own batch; the
gradients are summed across replicas by the strategy, so one step applies the
gradient of the mean loss over the global batch (batch_size x replicas examples).
"""
import datetime
import math
import shutil
import signal
import tempfile
import time

import tensorflow as tf
from tensorboard.plugins.histogram import metadata as histogram_metadata

from cifar10 import data
from cifar10.config import RECIPES, Cifar10Error, check_writable_dir
from cifar10.distribute import is_chief
from cifar10.model import FC_WEIGHT_DECAY, Cifar10Model

LEARNING_RATE_DECAY_FACTOR = 0.1
NUM_EPOCHS_PER_DECAY = 350.0
MIN_WARMUP_STEPS = 300
MOVING_AVERAGE_DECAY = 0.9999   # of the weights; the evaluator uses the averages
LOSS_AVERAGE_DECAY = 0.9        # of the loss, for the smoothed TensorBoard curve
CHECKPOINTS_TO_KEEP = 5
CHECKPOINT_NAME = "model.ckpt"
SUMMARY_IMAGES = 3
HISTOGRAM_BUCKETS = 30  # as tf.summary.histogram
INITIAL_LOSS_SCALE = 2.0 ** 15     # float16 only
LOSS_SCALE_GROWTH_STEPS = 2000
# What a collective op raises when a peer worker died or restarted.
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
                      tf.errors.DeadlineExceededError)


class TrainState(tf.Module):
    """What a checkpoint holds: the step, the model, its moving averages and the
    optimizer's velocities (for plain SGD, the last update).

    The evaluator restores only `averages` (into a Cifar10Model) and `step`; every
    trainer, with any number of replicas and any recipe or precision, writes and reads
    this same layout.
    """

    def __init__(self, compute_dtype=tf.float32, fc_weight_decay=FC_WEIGHT_DECAY, conv_weight_decay=0.0):
        super().__init__(name="train_state")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.model = Cifar10Model(compute_dtype, fc_weight_decay, conv_weight_decay)
        self.averages = Cifar10Model()
        for average, variable in zip(self.averages.trainable_variables, self.model.trainable_variables):
            average.assign(variable)
        self.optimizer = tf.Module(name="momentum")
        self.optimizer.velocities = [tf.Variable(tf.zeros_like(v), trainable=False, name="velocity")
                                     for v in self.model.trainable_variables]
        # float16 gradients need the loss scaled up so that they do not underflow.
        self.loss_scale = tf.Variable(INITIAL_LOSS_SCALE if self.model.compute_dtype == tf.float16 else 1.0,
                                      trainable=False, name="loss_scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")

    def checkpoint(self):
        """A tf.train.Checkpoint of this state."""
        return tf.train.Checkpoint(step=self.step, model=self.model, averages=self.averages,
                                   optimizer=self.optimizer)


def compute_dtype(use_fp16):
    """The forward pass's precision: with use_fp16, float16 on a GPU (with loss scaling)
    or bfloat16 on a CPU; without, float32. use_fp16=None picks mixed precision where
    the hardware computes in 16 bits natively: a GPU, or a CPU with AMX or AVX512-BF16."""
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if use_fp16 is None:
        use_fp16 = gpu or _cpu_has_bfloat16()
    if not use_fp16:
        return tf.float32
    return tf.float16 if gpu else tf.bfloat16


def _cpu_has_bfloat16():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:  # not Linux: stay with float32
        return False
    return any(flag in flags.split() for flag in ("amx_bf16", "avx512_bf16"))


def learning_rate_schedule(recipe, steps_per_epoch):
    """The recipe's learning rate as a function of the step (int64 scalar tensor), where
    a step sees steps_per_epoch-th of the training records."""
    if recipe.epochs is None:  # the tutorial: staircase decay by 10 every 350 epochs
        steps_per_decay = max(1, int(steps_per_epoch * NUM_EPOCHS_PER_DECAY))
        return lambda step: recipe.learning_rate * LEARNING_RATE_DECAY_FACTOR ** tf.cast(
            step // steps_per_decay, tf.float32)
    total = recipe.epochs * steps_per_epoch
    # Early steps are what the warm-up tames, so it lasts some steps even on small data.
    warmup = min(max(recipe.warmup_epochs * steps_per_epoch, MIN_WARMUP_STEPS), total / 2)

    def learning_rate(step):
        step = tf.cast(step, tf.float32)
        return recipe.learning_rate * tf.maximum(0.0, tf.minimum(step / warmup, (total - step) / (total - warmup)))
    return learning_rate


def make_train_step(strategy, state, global_batch, learning_rate, recipe):
    """A compiled step: takes an iterator of (images [B, 24, 24, 3], labels [B]) batches
    distributed by strategy, applies one SGD (or momentum) update of the recipe and the
    moving averages, and returns the loss of the global batch (float32 scalar: mean
    cross-entropy plus weight decay).
    """
    variables = state.model.trainable_variables
    averages = state.averages.trainable_variables
    velocities = state.optimizer.velocities
    replicas = strategy.num_replicas_in_sync
    scaling = state.model.compute_dtype == tf.float16

    def replica_loss_and_gradients(images, labels):
        with tf.GradientTape() as tape:
            logits = state.model(images)
            cross_entropy = smoothed_cross_entropy(labels, logits, recipe.label_smoothing)
            # Summed over replicas, these terms give the mean over the global batch plus
            # the weight decay once, whatever the number of replicas.
            loss = tf.reduce_sum(cross_entropy) / global_batch + state.model.weight_decay_loss() / replicas
            scaled_loss = loss * state.loss_scale if scaling else loss
        return loss, tape.gradient(scaled_loss, variables)

    def apply(variable, gradient, velocity, rate):
        velocity.assign(recipe.momentum * velocity - rate * gradient)
        variable.assign_add(recipe.momentum * velocity - rate * gradient if recipe.nesterov else velocity)

    @tf.function
    def train_step(iterator):
        images, labels = next(iterator)
        losses, gradients = strategy.run(replica_loss_and_gradients, args=(images, labels))
        gradients = strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.SUM, list(zip(gradients, variables)))
        rate = learning_rate(state.step)
        if scaling:
            gradients, rate = _unscale(state, gradients, rate)
        for variable, gradient, velocity in zip(variables, gradients, velocities):
            strategy.extended.update(variable, apply, args=(gradient, velocity, rate))
        state.step.assign_add(1)
        # As tf.train.ExponentialMovingAverage with num_updates=step: faster early on.
        step = tf.cast(state.step, tf.float32)
        decay = tf.minimum(MOVING_AVERAGE_DECAY, (1.0 + step) / (10.0 + step))
        for average, variable in zip(averages, variables):
            strategy.extended.update(average, lambda a, v: a.assign_sub((1.0 - decay) * (a - v)), args=(variable,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    return train_step


def smoothed_cross_entropy(labels, logits, label_smoothing):
    """Per-example cross-entropy [B] of logits [B, 10] against int labels [B], the target
    putting label_smoothing of its mass evenly on all classes."""
    if not label_smoothing:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    classes = logits.shape[-1]
    targets = tf.one_hot(labels, classes) * (1.0 - label_smoothing) + label_smoothing / classes
    return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)


def _unscale(state, gradients, rate):
    """Dynamic loss scaling, as Keras's LossScaleOptimizer: gradients divided by the scale;
    a step whose gradients overflowed applies nothing (learning rate 0) and halves the
    scale; LOSS_SCALE_GROWTH_STEPS good steps in a row double it."""
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
    gradients = [tf.where(finite, g / state.loss_scale, tf.zeros_like(g)) for g in gradients]
    grow = finite & (state.good_steps + 1 >= LOSS_SCALE_GROWTH_STEPS)
    state.loss_scale.assign(tf.where(grow, state.loss_scale * 2, tf.where(finite, state.loss_scale,
                                                                          state.loss_scale / 2)))
    state.good_steps.assign(tf.where(finite & ~grow, state.good_steps + 1, 0))
    return gradients, tf.where(finite, rate, 0.0)


def make_summary_writer(state, label_smoothing=0.0):
    """A compiled function writing histograms of activations, weights and gradients (of
    the training loss, with the recipe's label_smoothing), activation sparsity and a few
    input images for one local batch, at the current step, to the default summary writer."""
    @tf.function
    def write_summaries(images, labels):
        with tf.GradientTape() as tape:
            logits, activations = state.model.forward(images)
            cross_entropy = smoothed_cross_entropy(labels, logits, label_smoothing)
            loss = tf.reduce_mean(cross_entropy) + state.model.weight_decay_loss()
        variables = state.model.trainable_variables
        gradients = tape.gradient(loss, variables)
        step = state.step
        for name, activation in activations.items():
            activation = tf.cast(activation, tf.float32)
            _histogram(f"activations/{name}", activation, step)
            tf.summary.scalar(f"sparsity/{name}", tf.math.zero_fraction(activation), step=step)
        for variable, gradient in zip(variables, gradients):
            name = variable.name.split(":")[0]
            _histogram(f"weights/{name}", variable, step)
            _histogram(f"gradients/{name}", gradient, step)
        shown = images[:SUMMARY_IMAGES]
        low = tf.reduce_min(shown, axis=[1, 2, 3], keepdims=True)
        high = tf.reduce_max(shown, axis=[1, 2, 3], keepdims=True)
        tf.summary.image("images", (shown - low) / (high - low + 1e-6), step=step, max_outputs=SUMMARY_IMAGES)
    return write_summaries


def _histogram(tag, values, step):
    """Write tf.summary.histogram's summary of values (HISTOGRAM_BUCKETS equal buckets
    from the least to the greatest value), counted in one pass: TensorBoard's own op
    builds a values x buckets one-hot matrix, and took 0.55 s a summary for this model,
    15% of the training time at one summary every 100 steps."""
    values = tf.reshape(tf.cast(values, tf.float64), [-1])
    low, high = tf.reduce_min(values), tf.reduce_max(values)
    high = tf.where(high > low, high, low + 1.0)  # all values equal: one bucket holds them
    counts = tf.histogram_fixed_width(values, tf.stack([low, high]), nbins=HISTOGRAM_BUCKETS)
    edges = tf.linspace(low, high, HISTOGRAM_BUCKETS + 1)
    buckets = tf.stack([edges[:-1], edges[1:], tf.cast(counts, tf.float64)], axis=1)
    tf.summary.write(tag, buckets, step=step, metadata=histogram_metadata.create_summary_metadata(None, None))


def restore_latest(checkpoint, train_dir):
    """Restore checkpoint from the latest one in train_dir; returns its path or None.
    Raises Cifar10Error when that checkpoint does not fit (another model's shape)."""
    latest = tf.train.latest_checkpoint(train_dir)
    if latest is None:
        return None
    try:
        checkpoint.restore(latest).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise Cifar10Error(f"Cannot resume from {latest}: it is damaged, or does not hold this model's "
                           f"variables in their shapes ({str(e).splitlines()[0]}). Pass a new --train_dir, or "
                           "move the checkpoints away (an older one may still be good). Nothing was changed.") from e
    return latest


class _StopRequests:
    """Turns SIGINT and SIGTERM into a flag the loop checks, so that the trainer saves a
    checkpoint at the current step and exits cleanly."""

    def __init__(self):
        self.requested = None
        self._previous = {}

    def __enter__(self):
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            pass
        return self

    def _handle(self, signum, frame):
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def train(config, strategy=None):
    """Train per config, resuming from the latest checkpoint in config.train_dir.

    strategy: a tf.distribute strategy (default: the current one, one device).
    Returns the final step. Raises Cifar10Error for bad data, directories, checkpoints
    and a diverged loss; the latest good checkpoint is always kept.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    chief = is_chief(strategy)

    data.maybe_download_and_extract(config.data_dir, config.data_url)
    filenames = data.data_files(config.data_dir)
    num_records = data.count_records(filenames)
    check_writable_dir(config.train_dir, "--train_dir")
    # Non-chief workers must take part in every save, but into a private folder.
    write_dir = config.train_dir if chief else tempfile.mkdtemp(prefix="cifar10_worker_")
    try:
        recipe = RECIPES[config.recipe]
        dtype = compute_dtype(config.use_fp16)
        with strategy.scope():
            state = TrainState(dtype, recipe.fc_weight_decay, recipe.conv_weight_decay)
        checkpoint = state.checkpoint()
        restored = restore_latest(checkpoint, config.train_dir)
        manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=CHECKPOINTS_TO_KEEP,
                                             checkpoint_name=CHECKPOINT_NAME)
        steps_per_epoch = num_records / global_batch
        learning_rate = learning_rate_schedule(recipe, steps_per_epoch)
        last_step = config.max_steps if recipe.epochs is None else \
            min(config.max_steps, math.ceil(recipe.epochs * steps_per_epoch))
        train_step = make_train_step(strategy, state, global_batch, learning_rate, recipe)
        dataset = strategy.distribute_datasets_from_function(
            lambda context: data.training_dataset(filenames, config.batch_size, context, recipe.cutout))
        writer = tf.summary.create_file_writer(write_dir) if chief else tf.summary.create_noop_writer()
        step = int(state.step.numpy())
        print(f"{_now()}: {'resuming from ' + restored if restored else 'starting'} at step {step} of "
              f"{last_step} ({config.recipe} recipe, {dtype.name} compute); {num_records} training records, "
              f"{replicas} replica(s) of batch {config.batch_size}, {steps_per_epoch:.1f} steps an epoch; "
              f"{'writing to ' + config.train_dir if chief else 'the chief writes checkpoints'}", flush=True)
        with writer.as_default(), _StopRequests() as stop:
            try:
                step = _loop(config, strategy, state, manager, dataset, train_step, learning_rate, last_step,
                             chief, stop)
            except LOST_WORKER_ERRORS as e:
                if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                    raise
                # Collectives cannot recover in-process: every worker must start afresh.
                raise Cifar10Error(
                    f"Lost contact with another worker ({str(e).strip().splitlines()[0]}). Restart every "
                    f"worker with its command: the job resumes from the latest checkpoint in "
                    f"{config.train_dir}.") from e
        writer.flush()
        return step
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _loop(config, strategy, state, manager, dataset, train_step, learning_rate, last_step, chief, stop):
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    write_summaries = make_summary_writer(state, RECIPES[config.recipe].label_smoothing)
    weights_finite = tf.function(lambda: tf.reduce_all(
        [tf.reduce_all(tf.math.is_finite(v)) for v in state.model.trainable_variables]))
    agree = _make_agreement(strategy) if multi_worker else (lambda flags: flags)
    loss_average = None
    iterator = iter(dataset)
    step = int(state.step.numpy())
    last_save_time = last_log_time = time.monotonic()

    def save(at_step):
        nonlocal last_save_time
        if not bool(weights_finite()):
            raise _diverged(at_step, "non-finite weights", manager)
        manager.save(checkpoint_number=at_step)
        last_save_time = time.monotonic()

    while step < last_step:
        loss = train_step(iterator)
        step += 1
        if chief and config.save_summaries_steps and step % config.save_summaries_steps == 0:
            images, labels = next(iterator)
            write_summaries(strategy.experimental_local_results(images)[0],
                            strategy.experimental_local_results(labels)[0])
        decide_now = step % config.log_frequency == 0 or not multi_worker
        if step % config.log_frequency == 0:
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise _diverged(step, f"loss = {loss_value}", manager)
            now = time.monotonic()
            duration = (now - last_log_time) / config.log_frequency
            last_log_time = now
            print(f"{_now()}: step {step}, loss = {loss_value:.2f} ({global_batch / duration:.1f} "
                  f"examples/sec; {duration / replicas:.3f} sec/batch)", flush=True)
            loss_average = loss_value if loss_average is None else (
                LOSS_AVERAGE_DECAY * loss_average + (1 - LOSS_AVERAGE_DECAY) * loss_value)
            tf.summary.scalar("loss/raw", loss_value, step=step)
            tf.summary.scalar("loss/moving_average", loss_average, step=step)
            tf.summary.scalar("learning_rate", learning_rate(tf.constant(step - 1, tf.int64)), step=step)
            tf.summary.scalar("examples_per_sec", global_batch / duration, step=step)
        if decide_now:
            # Time and signals differ between workers: act on them only when all agree.
            time_due = config.save_checkpoint_secs and time.monotonic() - last_save_time >= config.save_checkpoint_secs
            stop_wanted, time_due = agree([stop.requested is not None, bool(time_due)])
        else:
            stop_wanted = time_due = False
        steps_due = config.save_checkpoint_steps and step % config.save_checkpoint_steps == 0
        if stop_wanted or time_due or steps_due or step == last_step:
            save(step)
        if stop_wanted:
            print(f"{_now()}: stopped by {stop.requested or 'another worker'} at step {step}; "
                  f"saved {manager.latest_checkpoint}", flush=True)
            break
    return step


def _make_agreement(strategy):
    """For several workers: a function that all-reduces a list of local booleans so that
    every worker acts on the same decision (any worker's True wins)."""
    @tf.function
    def any_worker(flags):
        per_replica = strategy.run(lambda: tf.cast(flags, tf.int32))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None) > 0
    return lambda flags: [bool(f) for f in any_worker(tf.constant(flags))]


def _diverged(step, what, manager):
    kept = manager.latest_checkpoint or "none yet"
    return Cifar10Error(f"Model diverged with {what} at step {step}; nothing was saved after it, and "
                        f"the latest good checkpoint ({kept}) stays the latest. Lower the learning rate "
                        "or check the training data, then run again to resume from that checkpoint.")


def _now():
    return datetime.datetime.now()
