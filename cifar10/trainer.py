"""Training: the compiled step, the loop, checkpoints and TensorBoard summaries.

One code path serves every trainer: a tf.distribute strategy decides where the step
runs (one device, N towers of MirroredStrategy, or several machines with
MultiWorkerMirroredStrategy). Each replica computes the loss of its own batch; the
gradients are summed across replicas by the strategy, so one step applies the
gradient of the mean loss over the global batch (batch_size x replicas examples).
"""
import contextlib
import datetime
import math
import os
import shutil
import signal
import tempfile
import time

import tensorflow as tf
from tensorboard.plugins.histogram import metadata as histogram_metadata

from cifar10 import checkpoints, data, distillation, distribute, startup, validation
from cifar10.checkpoints import TrainState
from cifar10.config import DEFAULT_MAX_STEPS
from cifar10.distribute import is_chief
from cifar10.errors import Cifar10Error, SignalExit, StopRequests, check_writable_dir

MIN_WARMUP_STEPS = 300
LOSS_AVERAGE_DECAY = 0.9        # of the loss, for the smoothed TensorBoard curve
SUMMARY_IMAGES = 3
HISTOGRAM_BUCKETS = 30  # as tf.summary.histogram
LOSS_SCALE_GROWTH_STEPS = 2000
FLOAT16_ON_CPU = "CIFAR10_FLOAT16_ON_CPU"  # environment variable; see compute_dtype
# What a collective op raises when a peer worker died or restarted.
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
                      tf.errors.DeadlineExceededError)


def run(config, num_gpus=None):
    """What both training scripts do: set up where training runs (one device; num_gpus
    towers; or, with TF_CONFIG, one job across workers: see cifar10.distribute), then
    train(config) there. Returns the final step."""
    strategy = distribute.make_strategy(num_gpus)  # before any other TensorFlow work
    tf.debugging.set_log_device_placement(config.log_device_placement)
    return train(config, strategy)


def train(config, strategy=None):
    """Train per config (a TrainConfig), resuming from the newest checkpoint in
    config.train_dir that loads.

    strategy: a tf.distribute strategy (default: the current one, one device).
    Returns the final step. Raises Cifar10Error for bad data, folders, checkpoints and a
    diverged loss, and SignalExit after saving a checkpoint when SIGINT or SIGTERM asked
    it to stop; the latest good checkpoint is always kept.
    """
    training = build(config, strategy or tf.distribute.get_strategy())
    try:
        return loop(training)
    finally:
        training.close()


def loop(training):
    """The training loop: from the state's step to training.last_step, one compiled step
    at a time, with the log line, summaries and checkpoints as the config asks. Returns
    the final step (see train for what it raises)."""
    config = training.config
    # SIGINT and SIGTERM save a checkpoint at the current step, then exit; a second one
    # exits at once: checkpoints are written under a temporary name and renamed, so the
    # latest complete one stays the latest.
    stop_requests = StopRequests(again_note="exiting at once, without saving")
    with training.writer.as_default(), stop_requests as stop, training.lost_workers_stop_the_job():
        iterator = iter(training.dataset)
        step = int(training.state.step.numpy())
        while step < training.last_step:
            loss, images, labels = training.train_step(iterator)
            step += 1
            if training.chief and config.save_summaries_steps and step % config.save_summaries_steps == 0:
                training.check_loss(loss, step)  # histograms of NaNs cannot be drawn
                training.write_summaries(images, labels)
            if step % config.log_frequency == 0:
                training.log(step, training.check_loss(loss, step))
            if training.validation_due(step):
                training.validate(step)
            stop_wanted, time_due = training.agree_on(step, stop.requested is not None)
            steps_due = config.save_checkpoint_steps and step % config.save_checkpoint_steps == 0
            if stop_wanted or time_due or steps_due or step == training.last_step:
                training.save(step)
            if stop_wanted:
                by = signal.Signals(stop.requested).name if stop.requested else "another worker"
                print(f"{_now()}: stopped by {by} at step {step}; saved {training.manager.latest_checkpoint}",
                      flush=True)
                raise SignalExit(stop.requested or signal.SIGTERM)  # unfinished, as if signalled here
    return step


def compute_dtype(use_fp16):
    """The forward pass's precision: with use_fp16, float16 on a GPU (with loss scaling)
    or bfloat16 on a CPU; without, float32. use_fp16=None picks mixed precision where
    the hardware computes in 16 bits natively: a GPU, or a CPU with AMX or AVX512-BF16."""
    # The test switch: a CPU computes as a GPU does (float16, loss scaling, the LRN in
    # float32), so that the GPU's mixed-precision path runs in CI, which has no GPU.
    gpu = bool(tf.config.list_physical_devices("GPU")) or os.environ.get(FLOAT16_ON_CPU) == "1"
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


def learning_rate_schedule(recipe, records_per_epoch, global_batch):
    """The recipe's learning rate as a function of the examples trained on so far (int64
    scalar tensor), an epoch being records_per_epoch examples: a run resumed with another
    global batch continues the same schedule. global_batch (examples a step) only sets
    the shortest warm-up, MIN_WARMUP_STEPS steps."""
    if recipe.epochs is None:  # the tutorial's staircase: by 10 every 350 epochs, unless overridden
        examples_per_decay = records_per_epoch * recipe.num_epochs_per_decay
        return lambda examples_seen: recipe.learning_rate * recipe.learning_rate_decay_factor ** tf.cast(
            tf.floor(tf.cast(examples_seen, tf.float64) / examples_per_decay), tf.float32)
    total = recipe.epochs
    # Early steps are what the warm-up tames, so it lasts some steps even on small data.
    warmup = min(max(recipe.warmup_epochs, MIN_WARMUP_STEPS * global_batch / records_per_epoch), total / 2)
    peak, held = recipe.learning_rate, recipe.swa_learning_rate
    # Where the decay reaches the rate held over the last swa_epochs (the warm-up first).
    held_from = max(total - recipe.swa_epochs, warmup)

    def learning_rate(examples_seen):
        # float64: examples_seen passes float32's 2**24 exact integers in a long run.
        epoch = tf.cast(tf.cast(examples_seen, tf.float64) / records_per_epoch, tf.float32)
        if not held:
            return peak * tf.maximum(0.0, tf.minimum(epoch / warmup, (total - epoch) / (total - warmup)))
        decayed = tf.minimum(1.0, (epoch - warmup) / (held_from - warmup)) if held_from > warmup else 1.0
        return tf.where(epoch < warmup, peak * epoch / warmup, peak + (held - peak) * decayed)
    return learning_rate


def averages_decay(recipe, records_per_epoch, global_batch):
    """The decay of the averages of the weights at a step, as a function of the step
    count and the examples seen, both counting that step (int64 scalar tensors): the
    moving averages' recipe.moving_average_decay, capped early in a run as
    tf.train.ExponentialMovingAverage with num_updates; over the last recipe.swa_epochs
    epochs (of records_per_epoch examples), what makes the averages the mean of the
    weights after each step since those epochs began, each step counted for its examples
    in them (global_batch, or fewer for the first), so that a run resumed with another
    global batch keeps the mean exact."""
    def moving(step):
        step = tf.cast(step, tf.float32)
        return tf.minimum(recipe.moving_average_decay, (1.0 + step) / (10.0 + step))
    if not recipe.swa_epochs:
        return lambda step, examples_seen: moving(step)
    swa_start = (recipe.epochs - recipe.swa_epochs) * records_per_epoch  # in examples

    def decay(step, examples_seen):
        swa_examples = tf.cast(examples_seen, tf.float64) - swa_start  # seen since the averaging began
        # The running mean: the first step in (swa_examples <= global_batch) gives the weights.
        mean = tf.cast(tf.maximum(1.0 - global_batch / swa_examples, 0.0), tf.float32)
        return tf.where(swa_examples > 0, mean, moving(step))
    return decay


def last_step(recipe, max_steps, step, examples_seen, records_per_epoch, global_batch):
    """The step the run ends at: max_steps, or earlier where the recipe's last epoch ends,
    from step, having seen examples_seen, at global_batch examples a step."""
    if recipe.epochs is None:
        return max_steps
    remaining = math.ceil((recipe.epochs * records_per_epoch - examples_seen) / global_batch)
    return min(max_steps, step + max(0, remaining))


# Muon's quintic Newton-Schulz iteration (Jordan et al., 2024), with keras.optimizers.Muon's
# coefficients and number of steps: it takes every singular value of a matrix whose
# largest is at most 1 to between about 0.7 and 1.2.
NEWTON_SCHULZ_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NEWTON_SCHULZ_STEPS = 5


def orthogonalized(update):
    """Muon's direction for the update of a kernel (float32 [..., outputs], a convolution's
    or a dense layer's): the update as a [fan-in, outputs] matrix, its singular values
    brought to about 1 by the Newton-Schulz iteration, then scaled to the update's own
    Frobenius norm: only the step's direction changes, so a recipe's learning rates carry
    over (keras.optimizers.Muon gives its steps a size of their own and trains the other
    variables with AdamW). Returns float32 of the update's shape.

    Each Newton-Schulz step maps every singular value s of the matrix to s (a + b s^2 +
    c s^4) and keeps the singular vectors. On a CPU the five steps' map is applied to the
    singular values directly, x V diag(g) V^T with x^T x = V diag(s^2) V^T (the smaller
    side's Gram matrix, float32): local3's 2,304 x 384 kernel in 21.8 ms against 41.0 for
    the matrix products, and a bfloat16 step at batch 256 in 111.7 ms against 135.8 (90.9
    without Muon; the 2-core EPYC, medians of interleaved windows). The result is Keras's
    to float32's rounding: within 4e-4 on the momenta of a real run, whose singular values
    span factors up to 1e10 (the steps in bfloat16 were 4 to 10% off). On a GPU the steps
    run as Keras runs them, as matrix products, which a GPU is built for (the two forms
    have not been timed there: no GPU has been lent).
    """
    matrix = tf.reshape(update, [-1, update.shape[-1]])
    x = matrix / (tf.norm(matrix) + 1e-7)  # no singular value above 1
    if tf.config.list_logical_devices("GPU"):
        x = _newton_schulz(x)
    else:
        x = _newton_schulz_on_singular_values(x)
    return tf.reshape(x * (tf.norm(matrix) / (tf.norm(x) + 1e-12)), update.shape)


def _newton_schulz(x):
    """keras.optimizers.Muon's steps on x (float32 [m, n]) as matrix products."""
    a, b, c = NEWTON_SCHULZ_COEFFICIENTS
    tall = x.shape[0] > x.shape[1]
    x = tf.transpose(x) if tall else x
    for _ in range(NEWTON_SCHULZ_STEPS):
        xxt = tf.matmul(x, x, transpose_b=True)
        x = a * x + tf.matmul(b * xxt + c * tf.matmul(xxt, xxt), x)
    return tf.transpose(x) if tall else x


def _newton_schulz_on_singular_values(x):
    """The same steps on x (float32 [m, n]) through the eigenvectors of its smaller Gram
    matrix: each squared singular value s^2 is carried through the steps, and x is
    multiplied by the product g of their factors a + b s^2 + c s^4 along its singular
    vectors."""
    a, b, c = NEWTON_SCHULZ_COEFFICIENTS
    tall = x.shape[0] > x.shape[1]
    gram = tf.matmul(x, x, transpose_a=tall, transpose_b=not tall)
    # A diverged step's non-finite update would stop eigh with an error; eigh takes a
    # finite stand-in, and x carries the non-finite values on into the result, so the
    # weights go non-finite and the trainer stops with its "Model diverged" error.
    squared, vectors = tf.linalg.eigh(tf.where(tf.math.is_finite(gram), gram, tf.zeros_like(gram)))
    squared = tf.maximum(squared, 0.0)  # rounding can leave the smallest below 0
    gain = tf.ones_like(squared)
    for _ in range(NEWTON_SCHULZ_STEPS):
        factor = a + b * squared + c * squared * squared
        gain *= factor
        squared *= factor * factor
    along_vectors = tf.matmul(vectors * gain, vectors, transpose_b=True)
    return tf.matmul(x, along_vectors) if tall else tf.matmul(along_vectors, x)


def make_train_step(strategy, state, global_batch, learning_rate, recipe, records_per_epoch=None):
    """A compiled step: takes an iterator of (images [B, 24, 24, 3], labels [B] or mixup's
    targets [B, 10]) batches distributed by strategy, applies one SGD (or momentum) update
    of the recipe (orthogonalized for the kernels of recipe.muon_layer_names()) and
    the averages of the weights, and returns the loss of the global batch (float32
    scalar: mean cross-entropy plus the weight decay of every decayed kernel but those
    of recipe.decoupled_decay_layer_names(), decayed beside the step) and the first
    replica's batch it trained on (images, labels), for summaries. learning_rate maps
    the examples seen to the rate; records_per_epoch (examples an epoch) is needed by a
    recipe with swa_epochs, to know where they begin.
    """
    variables = state.model.trainable_variables
    averages = state.averages.trainable_variables
    velocities = state.optimizer.velocities
    scaling = state.model.compute_dtype == tf.float16
    average_decay = averages_decay(recipe, records_per_epoch, global_batch)
    # Muon leaves the biases and the output layer to the momentum update, as Keras's does.
    orthogonal = {layer.weights.ref() for layer in state.model.layers if layer.name in recipe.muon_layer_names()}
    # Decoupled decay: in the loss, a kernel's decay gradient would be turned with the rest
    # of its step, and where the decay dominates a step, that pulls every singular direction
    # in by about the same amount, the weakest most in proportion. Beside the turned step,
    # each weight shrinks in proportion to itself, by what an L2 term takes from a momentum
    # step once the velocity has built up.
    decoupled = recipe.decoupled_decay_layer_names()
    decoupled_decays = {layer.weights.ref(): layer.weight_decay / (1.0 - recipe.momentum)
                        for layer in state.model.layers if layer.name in decoupled}

    def replica_loss_and_gradients(images, labels):
        with tf.GradientTape() as tape:
            logits = state.model(images)
            cross_entropy = smoothed_cross_entropy(labels, logits, recipe.label_smoothing)
            # Summed over replicas, these terms give the mean over the global batch plus
            # the weight decay once, whatever the number of replicas.
            loss = (tf.nn.compute_average_loss(cross_entropy, global_batch_size=global_batch)
                    + tf.nn.scale_regularization_loss(state.model.weight_decay_loss(excluding=decoupled)))
            scaled_loss = loss * state.loss_scale if scaling else loss
        return loss, tape.gradient(scaled_loss, variables)

    # Momentum, loss scaling and the moving averages are written out here rather than
    # taken from keras.optimizers.SGD, LossScaleOptimizer or tf.train.ExponentialMovingAverage:
    # those keep their state under keys of their own (opt/_variables/N, shadow variables),
    # which would break the one checkpoint layout that every trainer, the evaluator and
    # runs already written share (cifar10/checkpoints.py). The arithmetic is Keras's
    # (tests/test_recipes.py checks the update against keras.optimizers.SGD).
    def apply(variable, gradient, velocity, rate, finite=None, orthogonalize=False, decoupled_decay=0.0):
        new_velocity = recipe.momentum * velocity - rate * gradient
        update = recipe.momentum * new_velocity - rate * gradient if recipe.nesterov else new_velocity
        if orthogonalize:
            update = orthogonalized(update)
        if decoupled_decay:  # a Python float: without the flag the compiled step has no such term
            update -= rate * decoupled_decay * variable
        if finite is not None:  # loss scaling: a step whose gradients overflowed changes nothing
            new_velocity = tf.where(finite, new_velocity, velocity)
            update = tf.where(finite, update, tf.zeros_like(update))
        velocity.assign(new_velocity)
        variable.assign_add(update)

    @tf.function
    def train_step(iterator):
        images, labels = next(iterator)
        losses, gradients = strategy.run(replica_loss_and_gradients, args=(images, labels))
        gradients = strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.SUM, list(zip(gradients, variables)))
        rate = learning_rate(state.examples_seen)
        finite = None
        if scaling:
            gradients, finite = _unscale(state, gradients)
        for variable, gradient, velocity in zip(variables, gradients, velocities):
            strategy.extended.update(variable, apply, args=(gradient, velocity, rate, finite),
                                     kwargs={"orthogonalize": variable.ref() in orthogonal,
                                             "decoupled_decay": decoupled_decays.get(variable.ref(), 0.0)})
        state.step.assign_add(1)
        state.examples_seen.assign_add(global_batch)
        decay = average_decay(state.step, state.examples_seen)
        for average, variable in zip(averages, variables):
            strategy.extended.update(average, lambda a, v: a.assign_sub((1.0 - decay) * (a - v)), args=(variable,))
        loss = strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)
        return loss, strategy.experimental_local_results(images)[0], strategy.experimental_local_results(labels)[0]

    return train_step


def smoothed_cross_entropy(labels, logits, label_smoothing):
    """Per-example cross-entropy [B] of logits [B, 10] against int labels [B] or float32
    targets [B, 10] (mixup's), the target putting label_smoothing of its mass evenly on
    all classes."""
    if labels.dtype.is_integer:
        if not label_smoothing:
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        labels = tf.one_hot(labels, logits.shape[-1])
    targets = labels * (1.0 - label_smoothing) + label_smoothing / logits.shape[-1]
    return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)


def _unscale(state, gradients):
    """Dynamic loss scaling, as Keras's LossScaleOptimizer: returns the gradients divided
    by the scale, and whether they are all finite (a bool scalar). A step whose gradients
    overflowed must change nothing (its gradients are returned as zeros) and halves the
    scale; LOSS_SCALE_GROWTH_STEPS good steps in a row double it."""
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
    gradients = [tf.where(finite, g / state.loss_scale, tf.zeros_like(g)) for g in gradients]
    grow = finite & (state.good_steps + 1 >= LOSS_SCALE_GROWTH_STEPS)
    state.loss_scale.assign(tf.where(grow, state.loss_scale * 2, tf.where(finite, state.loss_scale,
                                                                          state.loss_scale / 2)))
    state.good_steps.assign(tf.where(finite & ~grow, state.good_steps + 1, 0))
    return gradients, finite


def make_write_summaries(state, label_smoothing=0.0, decoupled_decay_layers=()):
    """A compiled function writing histograms of activations, weights and gradients (of
    the training loss, with the recipe's label_smoothing, and without the weight decay of
    the layers named in decoupled_decay_layers, which is not in the loss), activation
    sparsity and a few input images for one local batch, at the current step, to the
    default summary writer."""
    @tf.function
    def write_summaries(images, labels):
        with tf.GradientTape() as tape:
            logits, activations = state.model.forward(images)
            cross_entropy = smoothed_cross_entropy(labels, logits, label_smoothing)
            loss = tf.reduce_mean(cross_entropy) + state.model.weight_decay_loss(excluding=decoupled_decay_layers)
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
    15% of the training time at one summary every 100 steps. Values that are not all
    finite (a diverged step) have no range: nothing is written, and the training loop's
    own checks report the divergence."""
    values = tf.reshape(tf.cast(values, tf.float64), [-1])

    def write():
        low, high = tf.reduce_min(values), tf.reduce_max(values)
        high = tf.where(high > low, high, low + 1.0)  # all values equal: one bucket holds them
        counts = tf.histogram_fixed_width(values, tf.stack([low, high]), nbins=HISTOGRAM_BUCKETS)
        edges = tf.linspace(low, high, HISTOGRAM_BUCKETS + 1)
        buckets = tf.stack([edges[:-1], edges[1:], tf.cast(counts, tf.float64)], axis=1)
        return tf.summary.write(tag, buckets, step=step, metadata=histogram_metadata.create_summary_metadata(None, None))
    tf.cond(tf.reduce_all(tf.math.is_finite(values)), write, lambda: tf.constant(False))


class Training:
    """What the training loop works with, from build(): the state (restored), the
    compiled step, the dataset, the checkpoint manager, the schedule's last step, the
    summaries, and the bookkeeping of logs and saves. The chief writes checkpoints and
    summaries to config.train_dir; other workers into a private folder, removed by close().
    """

    def __init__(self, config, strategy, state, dataset, records_per_epoch, learning_rate, last_step, write_dir,
                 validator=None):
        self.config = config
        self.strategy = strategy
        self.chief = is_chief(strategy)
        self.multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.global_batch = config.batch_size * strategy.num_replicas_in_sync
        self.state = state
        self.dataset = dataset
        self.records_per_epoch = records_per_epoch
        self.learning_rate = learning_rate
        self.last_step = last_step
        # The log line tells the epoch and the time left when the run has a known end.
        self.known_end = config.recipe.epochs is not None or config.max_steps < DEFAULT_MAX_STEPS
        self.write_dir = write_dir
        self.validator = validator  # a cifar10.validation.Validator, with --validation_records
        self.train_step = make_train_step(strategy, state, self.global_batch, learning_rate, config.recipe,
                                          records_per_epoch)
        self.write_summaries = make_write_summaries(state, config.recipe.label_smoothing,
                                                    config.recipe.decoupled_decay_layer_names())
        self.writer = tf.summary.create_file_writer(write_dir) if self.chief else tf.summary.create_noop_writer()
        self.manager = tf.train.CheckpointManager(state.checkpoint(), write_dir,
                                                  max_to_keep=checkpoints.CHECKPOINTS_TO_KEEP,
                                                  checkpoint_name=checkpoints.CHECKPOINT_NAME)
        self._weights_finite = tf.function(lambda: tf.reduce_all(
            [tf.reduce_all(tf.math.is_finite(v)) for v in state.model.trainable_variables]))
        self._any_worker = _make_agreement(strategy) if self.multi_worker else None
        self._last_save_time = self._last_log_time = time.monotonic()
        self._first_log = None  # (time, step) of this process's first log line: the ETA's start
        self._loss_average = None

    def check_loss(self, loss, step):
        """The loss (a scalar tensor) as a float; raises Cifar10Error if it diverged."""
        value = float(loss)
        if not math.isfinite(value):
            raise _diverged(step, f"loss = {value}", self.manager)
        return value

    def log(self, step, loss):
        """Print the tutorial's log line for step, and write the loss, learning rate and
        speed to TensorBoard."""
        now = time.monotonic()
        seconds_per_step = (now - self._last_log_time) / self.config.log_frequency
        self._last_log_time = now
        examples_per_sec = self.global_batch / seconds_per_step
        progress = f" {self._progress(step, now)}" if self.known_end else ""
        print(f"{_now()}: step {step}, loss = {loss:.2f} ({examples_per_sec:.1f} examples/sec; "
              f"{seconds_per_step / self.strategy.num_replicas_in_sync:.3f} sec/batch){progress}", flush=True)
        self._loss_average = loss if self._loss_average is None else (
            LOSS_AVERAGE_DECAY * self._loss_average + (1 - LOSS_AVERAGE_DECAY) * loss)
        tf.summary.scalar("loss/raw", loss, step=step)
        tf.summary.scalar("loss/moving_average", self._loss_average, step=step)
        tf.summary.scalar("learning_rate", self.learning_rate(self.state.examples_seen - self.global_batch), step=step)
        tf.summary.scalar("examples_per_sec", examples_per_sec, step=step)

    def _progress(self, step, now):
        """'epoch E, P% done, ETA H:MM:SS' at step: the time left at the mean pace since
        this process's first log line (its first interval holds the compiling)."""
        epoch = int(self.state.examples_seen.numpy()) / self.records_per_epoch
        done = f"epoch {epoch:.1f}, {100 * step / self.last_step:.0f}% done"
        if self._first_log is None:
            self._first_log = (now, step)
            return done
        first_time, first_step = self._first_log
        seconds_left = (now - first_time) / (step - first_step) * (self.last_step - step)
        return f"{done}, ETA {datetime.timedelta(seconds=round(seconds_left))}"

    def agree_on(self, step, stop_requested):
        """(stop now, save for time now): with several workers, whose clocks and signals
        differ, decided together every log_frequency steps, any worker's wish winning."""
        time_due = bool(self.config.save_checkpoint_secs) and (
            time.monotonic() - self._last_save_time >= self.config.save_checkpoint_secs)
        if not self.multi_worker:
            return stop_requested, time_due
        if step % self.config.log_frequency:
            return False, False
        return self._any_worker([stop_requested, time_due])

    def validation_due(self, step):
        """Whether to validate after step (see cifar10.validation.Validator.due)."""
        return self.validator is not None and self.validator.due(step, self.last_step)

    def validate(self, step):
        """Validate the moving averages after step, keeping the best checkpoint in best/,
        unless the weights diverged (Cifar10Error)."""
        if not bool(self._weights_finite()):
            raise _diverged(step, "non-finite weights", self.manager)
        self.validator.validate(step, self._any_worker)

    def save(self, step):
        """Save a checkpoint at step, unless the weights diverged (Cifar10Error)."""
        if not bool(self._weights_finite()):
            raise _diverged(step, "non-finite weights", self.manager)
        self.manager.save(checkpoint_number=step)
        self._last_save_time = time.monotonic()

    @contextlib.contextmanager
    def lost_workers_stop_the_job(self):
        """Turns a collective's error when another worker died into a Cifar10Error:
        collectives cannot recover in-process, every worker must start afresh."""
        try:
            yield
        except LOST_WORKER_ERRORS as e:
            if not self.multi_worker:
                raise
            raise Cifar10Error(
                f"Lost contact with another worker ({str(e).strip().splitlines()[0]}). Restart every worker with "
                f"its command: the job resumes from the latest checkpoint in {self.config.train_dir}.") from e

    def close(self):
        """Flush the summaries; remove a non-chief worker's private checkpoint folder."""
        self.writer.flush()
        if not self.chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)


def build(config, strategy):
    """A Training for config (a TrainConfig) on strategy: the data downloaded and checked,
    the folders checked, the state restored from the newest checkpoint that loads (see
    resume), the schedule continued by epochs. Prints what the run is about to do."""
    if config.seed is not None:
        # tf.data pairs each op's seed with TensorFlow's global seed: fix that one too.
        tf.random.set_seed(config.seed)
    if config.deterministic:  # for the whole process, as TensorFlow has it
        tf.config.experimental.enable_op_determinism()
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    chief = is_chief(strategy)
    data.maybe_download_and_extract(config.data_dir, config.data_url)
    filenames = data.data_files(config.data_dir)
    num_records = data.training_records(filenames, config.validation_records)
    # A new run finds its teacher before its folder is made: a failed start leaves nothing.
    new_run_teacher = None
    if config.recipe.distillation and not checkpoints.listed(config.train_dir):
        new_run_teacher = distillation.find_teacher(config.teacher_dir)
    if chief:
        check_writable_dir(config.train_dir, "--train_dir")
    elif os.path.isdir(config.train_dir) and not os.access(config.train_dir, os.R_OK | os.X_OK):
        raise Cifar10Error(f"Cannot read --train_dir={config.train_dir}, where the chief writes the checkpoints "
                           "that every worker resumes from: make it readable on every worker.")
    dtype = compute_dtype(config.use_fp16)
    recipe = config.recipe
    with strategy.scope():
        state = TrainState(dtype, recipe.fc_weight_decay, recipe.conv_weight_decay, seed=config.seed)
    restored = resume(state, config, dtype, global_batch, chief, new_run_teacher)
    step = int(state.step.numpy())
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _check_same_start(strategy, step, config.train_dir)
    end = last_step(recipe, config.max_steps, step, int(state.examples_seen.numpy()), num_records, global_batch)
    teacher = None
    if recipe.distillation:
        teacher = distillation.teacher_probabilities(state.description.fields["teacher"], filenames, num_records)
    # Seeded by the step too: a resumed run does not replay the data of the run's start.
    data_seed = None if config.seed is None else (config.seed, step)
    dataset = strategy.distribute_datasets_from_function(
        lambda context: data.training_dataset(filenames, config.batch_size, context, recipe.cutout, seed=data_seed,
                                              validation_records=config.validation_records, mixup=recipe.mixup,
                                              teacher=teacher, distillation=recipe.distillation,
                                              random_contrast=recipe.random_contrast, crop_shift=recipe.crop_shift))
    # Non-chief workers must take part in every save, but into a private folder.
    write_dir = config.train_dir if chief else tempfile.mkdtemp(prefix="cifar10_worker_")
    validator = (validation.Validator(config, state, filenames, num_records, global_batch, write_dir, chief)
                 if config.validation_records else None)
    training = Training(config, strategy, state, dataset, num_records,
                        learning_rate_schedule(recipe, num_records, global_batch),
                        end, write_dir, validator)
    print(f"{_now()}: {startup.device_line('training', dtype, strategy)}", flush=True)
    print(f"{_now()}: {'resuming from ' + restored if restored else 'starting'} at step {step} of {end} "
          f"({_recipe_and_seed(config)}, {dtype.name} compute); {num_records} training records, {replicas} replica(s) "
          f"of batch {config.batch_size}, {num_records / global_batch:.1f} steps an epoch; "
          f"{'writing to ' + config.train_dir if chief else 'the chief writes checkpoints'}", flush=True)
    return training


def _recipe_and_seed(config):
    """The start line's words for the run's recipe and seed: 'fast recipe', or with
    overrides and a seed, 'fast recipe with --learning_rate=0.05, seed 7, deterministic ops'."""
    changed = config.recipe.override_flags()
    words = [f"{config.recipe.name} recipe" + (f" with {' '.join(changed)}" if changed else "")]
    if config.seed is not None:
        words.append(f"seed {config.seed}" + (", deterministic ops" if config.deterministic else ""))
    return ", ".join(words)


def resume(state, config, dtype, global_batch, chief, new_run_teacher=None):
    """Restore state from the newest checkpoint of config.train_dir that loads, skipping
    (and saying why) newer ones that are gone or damaged; the chief keeps the damaged
    ones under another name, so that the run neither overwrites nor prunes them.

    Returns the checkpoint's path, or None for a fresh start. Raises Cifar10Error, having
    changed nothing, when checkpoints exist but none loads, when the run was trained
    with another recipe, or when its teacher checkpoint does not load. Sets state's
    description to this run's, with the teacher checkpoint: new_run_teacher for a fresh
    start, the one the checkpoint records for a resumed run.
    """
    train_dir = config.train_dir
    path, format_version, skipped = checkpoints.newest_loadable(train_dir, state.restore)
    for skipped_path, reason in skipped:
        print(f"{_now()}: cannot resume from {skipped_path}: {reason}", flush=True)
    if path is None and skipped:
        raise checkpoints.none_loads_error(train_dir, "--train_dir", skipped)
    if path is not None and format_version == 1:
        state.examples_seen.assign(state.step * global_batch)
        state.loss_scale.assign(checkpoints.INITIAL_LOSS_SCALE if dtype == tf.float16 else 1.0)
        state.good_steps.assign(0)
        print(f"{_now()}: {path} predates the checkpoint's description of its run: taking its "
              f"{int(state.step.numpy())} steps as {global_batch} examples each, and the {config.recipe.name} recipe "
              "as its own", flush=True)
    elif path is not None:
        changes = checkpoints.recipe_differences(state.description.fields, config.recipe)
        if changes:
            flags = checkpoints.saved_recipe_flags(state.description.fields)
            raise Cifar10Error(
                f"{path} was trained with {flags}, and this run's recipe differs ({'; '.join(changes)}). A run "
                f"continues with its own recipe: pass {flags} to resume it, or a new --train_dir to start another "
                "run. Nothing was changed.")
        if dtype == tf.float16 and state.description.fields.get("compute_dtype") != "float16":
            state.loss_scale.assign(checkpoints.INITIAL_LOSS_SCALE)  # none was needed so far
    teacher = new_run_teacher
    if config.recipe.distillation and path is not None:  # after the recipe: a run of another one is refused first
        teacher = distillation.find_teacher(config.teacher_dir, state.description.fields.get("teacher"))
    if chief and path is not None and skipped:
        for skipped_path, _ in skipped:
            if os.path.exists(skipped_path + ".index"):
                print(f"{_now()}: kept {skipped_path} as {checkpoints.set_aside(skipped_path)}", flush=True)
        checkpoints.forget(train_dir, [p for p, _ in skipped], path)
    state.description.fields = checkpoints.describe(config.recipe, dtype, config.seed, teacher)
    return path


def _check_same_start(strategy, step, train_dir):
    """Raise Cifar10Error on every worker unless all workers resumed the same step (each
    reads --train_dir itself: a folder that is not shared, or stale, shows up here)."""
    @tf.function
    def every_replicas_step():
        return strategy.gather(strategy.run(lambda: tf.constant([step], tf.int64)), axis=0)
    steps = sorted(set(int(s) for s in every_replicas_step().numpy()))
    if len(steps) > 1:
        raise Cifar10Error(f"The workers resumed from different steps ({', '.join(map(str, steps))}) of "
                           f"--train_dir={train_dir}: every worker must read the same folder, where the chief "
                           "writes. Point --train_dir at one folder shared by all workers, then restart every "
                           "worker.")


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
