"""Recipes (schedules, momentum, Muon, moving averages, stochastic weight averaging, label
smoothing, mixup), mixed precision and float16 loss scaling."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from cifar10 import checkpoints, cli, data, trainer
from cifar10.config import RECIPES, Recipe, TrainConfig


BATCH = 8


def rates(recipe, steps_per_epoch, steps):
    """The learning rates at steps, with BATCH examples a step and steps_per_epoch steps an epoch."""
    schedule = trainer.learning_rate_schedule(recipe, steps_per_epoch * BATCH, BATCH)
    return [float(schedule(tf.constant(step * BATCH, tf.int64))) for step in steps]


def parse_config(flags):
    """The TrainConfig that the trainer's flags (a list of '--flag=value') give."""
    return cli.config_from(TrainConfig, cli.parser_for(TrainConfig, "").parse_args(flags))


def test_the_tutorial_schedule_divides_by_ten_every_350_epochs():
    # 10 steps an epoch: a decay every 3,500 steps, whatever the number of replicas.
    assert rates(RECIPES["tutorial"], 10, [0, 3499, 3500, 7000]) == pytest.approx([0.1, 0.1, 0.01, 0.001])


def test_the_short_recipe_is_the_measured_thirty_epoch_command():
    # README.md's seeds 0 and 1 of 30 epochs were run as --recipe=fast with these flags.
    measured = parse_config(["--recipe=fast", "--epochs=30", "--fc_weight_decay=0.004", "--conv_weight_decay=0.001",
                             "--random_contrast=false"])
    assert RECIPES["short"].values() == measured.recipe.values()


def test_the_muon_recipe_is_the_measured_104_epoch_command_and_its_batch_the_default():
    # README.md's three seeds of 104 epochs were run with these flags.
    measured = parse_config(["--recipe=short", "--epochs=104", "--batch_size=1024", "--learning_rate=0.24",
                             "--label_smoothing=0.1", "--muon=true", "--muon_decoupled_decay=true"])
    named = parse_config(["--recipe=muon"])
    assert named.recipe.values() == measured.recipe.values()
    assert named.batch_size == measured.batch_size == 1024
    assert parse_config(["--recipe=muon", "--batch_size=128"]).batch_size == 128
    assert parse_config(["--recipe=fast"]).batch_size == parse_config([]).batch_size == 128


def test_a_recipe_warms_up_then_decays_linearly_to_zero():
    recipe = Recipe(epochs=10, learning_rate=0.03, warmup_epochs=2)
    got = rates(recipe, 200, [0, 200, 400, 1200, 2000, 2400])
    assert got == pytest.approx([0.0, 0.015, 0.03, 0.015, 0.0, 0.0])


def test_the_warm_up_lasts_at_least_300_steps_on_small_data():
    recipe = Recipe(epochs=100, learning_rate=0.03, warmup_epochs=2)
    assert rates(recipe, 10, [150, 300, 650]) == pytest.approx([0.015, 0.03, 0.015])


def test_nesterov_momentum_update():
    recipe = Recipe(epochs=1, learning_rate=0.1, momentum=0.9, nesterov=True)
    state = trainer.TrainState()
    before = [v.numpy() for v in state.model.trainable_variables]
    images = tf.random.stateless_normal([16, 24, 24, 3], seed=[1, 1])
    labels = tf.range(16) % 10
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    step = trainer.make_train_step(tf.distribute.get_strategy(), state, 16, lambda examples_seen: 0.1, recipe)
    iterator = iter(dataset)

    with tf.GradientTape() as tape:
        logits = state.model(images)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)) + \
            state.model.weight_decay_loss()
    gradients = [g.numpy() for g in tape.gradient(loss, state.model.trainable_variables)]
    step(iterator)

    for b, g, v, velocity in zip(before, gradients, state.model.trainable_variables, state.optimizer.velocities):
        np.testing.assert_allclose(velocity.numpy(), -0.1 * g, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(v.numpy(), b + 0.9 * (-0.1 * g) - 0.1 * g, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("nesterov", [False, True])
def test_the_momentum_update_is_keras_sgds(nesterov):
    recipe = Recipe(epochs=1, momentum=0.9, nesterov=nesterov, fc_weight_decay=0.0)
    state = trainer.TrainState(fc_weight_decay=0.0)
    keras_variables = [tf.Variable(v) for v in state.model.trainable_variables]
    sgd = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=nesterov)
    images = tf.random.stateless_normal([8, 24, 24, 3], seed=[5, 6])
    labels = tf.range(8) % 10
    iterator = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    step = trainer.make_train_step(tf.distribute.get_strategy(), state, 8, lambda examples_seen: 0.05, recipe)
    for _ in range(3):
        with tf.GradientTape() as tape:
            for keras_variable, variable in zip(keras_variables, state.model.trainable_variables):
                variable.assign(keras_variable)  # the same weights for the gradient
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, state.model(images)))
        gradients = tape.gradient(loss, state.model.trainable_variables)
        sgd.apply_gradients(zip(gradients, keras_variables))
        step(iterator)
    for ours, theirs in zip(state.model.trainable_variables, keras_variables):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", [[5, 5, 3, 64], [5, 5, 64, 64], [2304, 384], [384, 192]])
def test_muon_orthogonalizes_as_keras_does_and_keeps_the_updates_length(shape):
    # Columns scaled from 0.05 to 1: singular values that span more than a factor of 10.
    update = tf.random.stateless_normal(shape, seed=[3, 4]) * tf.linspace(0.05, 1.0, shape[-1])
    matrix = tf.reshape(update, [-1, shape[-1]])
    ours = trainer.orthogonalized(update)  # on a CPU: the steps on the singular values
    theirs = keras.optimizers.Muon().zeropower_via_newtonschulz5(matrix, trainer.NEWTON_SCHULZ_STEPS)
    theirs = tf.reshape(theirs * tf.norm(update) / tf.norm(theirs), shape)
    assert float(tf.norm(ours - theirs) / tf.norm(theirs)) < 1e-4
    assert float(tf.norm(ours)) == pytest.approx(float(tf.norm(update)), rel=1e-5)
    before = np.linalg.svd(matrix, compute_uv=False)
    after = np.linalg.svd(tf.reshape(ours, [-1, shape[-1]]), compute_uv=False)
    assert before.max() / before.min() > 10 and after.max() / after.min() < 2


# float32 eigenvectors round otherwise than matrix products (7e-5 here); one step fewer
# or more is 0.45 away.
@pytest.mark.parametrize("steps, tolerance", [(trainer._newton_schulz, 2e-5),
                                              (trainer._newton_schulz_on_singular_values, 5e-4)])
@pytest.mark.parametrize("shape", [[2304, 384], [384, 2304]])
def test_both_forms_of_the_newton_schulz_steps_give_keras_result_on_an_ill_conditioned_matrix(steps, tolerance,
                                                                                             shape):
    # Singular values from 1 down to 1e-5, as on a real run's momentum: the directions of
    # the smallest are amplified 3.4445 ** 5 times, the rest brought to about 1.
    left, _ = np.linalg.qr(np.random.default_rng(5).normal(size=[max(shape), min(shape)]))
    right, _ = np.linalg.qr(np.random.default_rng(6).normal(size=[min(shape), min(shape)]))
    matrix = (left * np.logspace(0, -5, min(shape))) @ right.T
    matrix = tf.constant(matrix if shape[0] > shape[1] else matrix.T, tf.float32)
    theirs = keras.optimizers.Muon().zeropower_via_newtonschulz5(matrix, trainer.NEWTON_SCHULZ_STEPS)
    ours = steps(matrix / (tf.norm(matrix) + 1e-7))  # the GPU's form and the CPU's, both here
    assert float(tf.norm(ours - theirs) / tf.norm(theirs)) < tolerance


@pytest.mark.parametrize("muon_layers", ["conv1,conv2,local3,local4", "conv1,conv2,local4"])
def test_muon_turns_the_steps_of_its_layers_kernels_and_leaves_the_rest_as_momentum_has_them(muon_layers):
    images = tf.random.stateless_normal([16, 24, 24, 3], seed=[7, 8])
    labels = tf.range(16) % 10
    recipe = Recipe(epochs=1, momentum=0.9, nesterov=True, muon=True, muon_layers=muon_layers)
    state = trainer.TrainState()
    before = [v.numpy() for v in state.model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, state.model(images))) + \
            state.model.weight_decay_loss()
    gradients = tape.gradient(loss, state.model.trainable_variables)
    step = trainer.make_train_step(tf.distribute.get_strategy(), state, 16, lambda examples_seen: 0.05, recipe)
    step(iter(tf.data.Dataset.from_tensors((images, labels)).repeat()))

    turned = {f"{layer}/weights:0" for layer in muon_layers.split(",")}
    for variable, start, gradient in zip(state.model.trainable_variables, before, gradients):
        momentum = (-0.05 * (1 + 0.9) * gradient).numpy()  # Nesterov's first step, from no velocity
        change = variable.numpy() - start
        if variable.name in turned:
            expected = trainer.orthogonalized(tf.constant(momentum)).numpy()
            # The compiled step's gradients round otherwise than these, in directions that 16
            # images' gradients lack and the Newton-Schulz steps amplify (up to 3.4445 ** 5 times).
            assert np.linalg.norm(change - expected) < 5e-2 * np.linalg.norm(expected)
            assert np.linalg.norm(change - momentum) > 0.3 * np.linalg.norm(momentum)
        else:  # the biases, softmax_linear and the kernels of layers not named
            np.testing.assert_allclose(change, momentum, rtol=1e-3, atol=1e-7)


def test_decoupled_decay_shrinks_muons_kernels_beside_the_turned_step_and_leaves_their_decay_out_of_the_loss():
    images = tf.random.stateless_normal([16, 24, 24, 3], seed=[7, 8])
    labels = tf.range(16) % 10
    recipe = Recipe(epochs=1, momentum=0.9, nesterov=True, muon=True, muon_layers="conv1,local3,local4",
                    fc_weight_decay=0.04, conv_weight_decay=0.01, muon_decoupled_decay=True)
    state = trainer.TrainState(fc_weight_decay=0.04, conv_weight_decay=0.01)
    before = [v.numpy() for v in state.model.trainable_variables]
    with tf.GradientTape() as tape:
        cross_entropy = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, state.model(images)))
        loss = cross_entropy + 0.01 * tf.nn.l2_loss(state.model.conv2.weights)  # the one decay left in the loss
    gradients = tape.gradient(loss, state.model.trainable_variables)
    step = trainer.make_train_step(tf.distribute.get_strategy(), state, 16, lambda examples_seen: 0.05, recipe)
    step_loss, _, _ = step(iter(tf.data.Dataset.from_tensors((images, labels)).repeat()))
    assert float(step_loss) == pytest.approx(float(loss), rel=1e-5)

    decays = {"conv1/weights:0": 0.01, "local3/weights:0": 0.04, "local4/weights:0": 0.04}
    for variable, start, gradient in zip(state.model.trainable_variables, before, gradients):
        momentum = (-0.05 * (1 + 0.9) * gradient).numpy()  # Nesterov's first step, from no velocity
        change = variable.numpy() - start
        if variable.name in decays:
            turned = trainer.orthogonalized(tf.constant(momentum)).numpy()
            shrink = -0.05 * decays[variable.name] / (1 - 0.9) * start
            assert np.linalg.norm(shrink) > 0.2 * np.linalg.norm(turned)  # large enough to be seen
            # The turned step's rounding, as in the test above.
            assert np.linalg.norm(change - (turned + shrink)) < 5e-2 * np.linalg.norm(turned)
        else:  # conv2 (decayed through the loss), the biases and softmax_linear
            np.testing.assert_allclose(change, momentum, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("decay, expected", [
    (0.0, 0.0),  # the averages are the weights
    (0.5, 0.5),
    (0.9999, 1002 / 1011),  # the default, capped early in a run: at step 1001, (1 + step) / (10 + step)
])
def test_each_step_moves_the_moving_averages_by_one_minus_the_decay_towards_the_weights(decay, expected):
    recipe = Recipe(epochs=1, moving_average_decay=decay)
    state = trainer.TrainState()
    state.step.assign(1000)
    before = [v.numpy() for v in state.model.trainable_variables]
    images = tf.random.stateless_normal([8, 24, 24, 3], seed=[9, 10])
    iterator = iter(tf.data.Dataset.from_tensors((images, tf.range(8) % 10)).repeat())
    trainer.make_train_step(tf.distribute.get_strategy(), state, 8, lambda examples_seen: 0.1, recipe)(iterator)
    for b, variable, average in zip(before, state.model.trainable_variables, state.averages.trainable_variables):
        assert not np.allclose(variable.numpy(), b)
        np.testing.assert_allclose(average.numpy(), expected * b + (1 - expected) * variable.numpy(),
                                   rtol=1e-5, atol=1e-7)


def test_swa_decays_to_its_learning_rate_and_holds_it_over_the_last_epochs():
    recipe = Recipe(epochs=10, learning_rate=0.03, warmup_epochs=2, swa_epochs=4, swa_learning_rate=0.01)
    # 200 steps an epoch: the warm-up to epoch 2, the decay to 0.01 at epoch 6, held to the end.
    got = rates(recipe, 200, [0, 200, 400, 800, 1200, 1600, 2000])
    assert got == pytest.approx([0.0, 0.015, 0.03, 0.02, 0.01, 0.01, 0.01])
    # Without a rate of its own, the averaging leaves the schedule as it was.
    plain = Recipe(epochs=10, learning_rate=0.03, warmup_epochs=2)
    assert rates(Recipe(epochs=10, learning_rate=0.03, warmup_epochs=2, swa_epochs=4), 200, [400, 1200, 1800]) == \
        pytest.approx(rates(plain, 200, [400, 1200, 1800]))


def test_swa_averages_are_the_mean_of_the_weights_over_the_last_epochs_whatever_the_batch():
    # 40 examples an epoch; the averaging begins at example 44 (epoch 1.1 of 2), in step 6
    # at batch 8, which counts for its last 4 examples; then two steps of batch 8 and, as
    # a run resumed with another batch, two of batch 16.
    recipe = Recipe(epochs=2, swa_epochs=0.9)
    state = trainer.TrainState()
    weights, counts = [], []
    for batch, steps in ((8, 8), (16, 2)):
        images = tf.random.stateless_normal([batch, 24, 24, 3], seed=[batch, 1])
        iterator = iter(tf.data.Dataset.from_tensors((images, tf.range(batch) % 10)).repeat())
        step = trainer.make_train_step(tf.distribute.get_strategy(), state, batch, lambda examples_seen: 0.05,
                                       recipe, records_per_epoch=40)
        for _ in range(steps):
            step(iterator)
            in_averaging = int(state.examples_seen) - 44
            if in_averaging > 0:
                weights.append([v.numpy() for v in state.model.trainable_variables])
                counts.append(min(batch, in_averaging))
            else:  # the moving averages until then
                assert not np.allclose(state.averages.trainable_variables[0].numpy(),
                                       state.model.trainable_variables[0].numpy())
    assert counts == [4, 8, 8, 16, 16]
    for i, average in enumerate(state.averages.trainable_variables):
        mean = sum(c * w[i] for c, w in zip(counts, weights)) / sum(counts)
        np.testing.assert_allclose(average.numpy(), mean, rtol=1e-4, atol=1e-6)


def test_label_smoothing_moves_part_of_the_target_to_every_class():
    logits = tf.random.stateless_normal([6, 10], seed=[3, 4])
    labels = tf.constant([0, 1, 2, 3, 9, 9])
    plain = trainer.smoothed_cross_entropy(labels, logits, 0.0).numpy()
    np.testing.assert_allclose(plain, tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits).numpy())
    log_p = tf.nn.log_softmax(logits).numpy()
    # 0.1 of the target spread evenly: the label gets 0.91, every other class 0.01.
    expected = -(0.9 * log_p[np.arange(6), labels.numpy()] + 0.01 * log_p.sum(axis=1))
    np.testing.assert_allclose(trainer.smoothed_cross_entropy(labels, logits, 0.1).numpy(), expected, rtol=1e-5)


def test_the_cross_entropy_takes_mixups_targets_and_smooths_them_too():
    logits = tf.random.stateless_normal([4, 10], seed=[5, 4])
    targets = 0.7 * tf.one_hot([0, 1, 2, 3], 10) + 0.3 * tf.one_hot([3, 2, 1, 0], 10)
    log_p = tf.nn.log_softmax(logits).numpy()
    np.testing.assert_allclose(trainer.smoothed_cross_entropy(targets, logits, 0.0).numpy(),
                               -(targets.numpy() * log_p).sum(axis=1), rtol=1e-5)
    smoothed = 0.9 * targets.numpy() + 0.01
    np.testing.assert_allclose(trainer.smoothed_cross_entropy(targets, logits, 0.1).numpy(),
                               -(smoothed * log_p).sum(axis=1), rtol=1e-5)


def test_mixup_blends_each_batch_with_itself_reversed_and_the_targets_alike(stripe_data):
    filenames = data.data_files(stripe_data)

    def first_batches(mixup):
        tf.random.set_seed(3)  # as the trainer does with --seed=3: the same augmentation both times
        try:
            return list(data.training_dataset(filenames, 50, seed=(3, 0), mixup=mixup).take(2).as_numpy_iterator())
        finally:
            tf.random.set_seed(None)

    weights = []
    for (images, labels), (mixed, targets) in zip(first_batches(0.0), first_batches(0.4)):
        assert targets.shape == (50, 10) and targets.dtype == np.float32
        np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
        partners = labels[::-1]
        differ = labels != partners
        lam = targets[differ, labels[differ]]
        assert differ.any() and np.allclose(lam, lam[0])  # one weight for the whole batch
        lam = lam[0]
        np.testing.assert_allclose(targets[differ, partners[differ]], 1.0 - lam, atol=1e-6)
        np.testing.assert_allclose(mixed, lam * images + (1.0 - lam) * images[::-1], atol=1e-5)
        weights.append(lam)
    assert 0.0 <= min(weights) and max(weights) <= 1.0 and weights[0] != weights[1]  # drawn anew each batch


def test_float16_loss_scaling_skips_overflowing_steps_and_adapts_the_scale():
    state = trainer.TrainState(compute_dtype=tf.float16)
    assert float(state.loss_scale) == checkpoints.INITIAL_LOSS_SCALE
    good = [tf.fill([2], 4.0)]
    gradients, finite = trainer._unscale(state, good)
    np.testing.assert_allclose(gradients[0].numpy(), 4.0 / checkpoints.INITIAL_LOSS_SCALE)
    assert bool(finite) and int(state.good_steps) == 1

    gradients, finite = trainer._unscale(state, [tf.constant([np.inf, 1.0])])
    assert not bool(finite) and np.all(gradients[0].numpy() == 0)
    assert float(state.loss_scale) == checkpoints.INITIAL_LOSS_SCALE / 2 and int(state.good_steps) == 0

    state.good_steps.assign(trainer.LOSS_SCALE_GROWTH_STEPS - 1)
    trainer._unscale(state, good)
    assert float(state.loss_scale) == checkpoints.INITIAL_LOSS_SCALE and int(state.good_steps) == 0


def test_a_float16_step_that_overflows_moves_neither_weights_nor_velocities(monkeypatch):
    recipe = Recipe(epochs=1, momentum=0.9, nesterov=True)
    state = trainer.TrainState(compute_dtype=tf.float16)
    images = tf.random.stateless_normal([8, 24, 24, 3], seed=[7, 8])
    iterator = iter(tf.data.Dataset.from_tensors((images, tf.range(8) % 10)).repeat())
    step = trainer.make_train_step(tf.distribute.get_strategy(), state, 8, lambda examples_seen: 0.1, recipe)
    step(iterator)  # a good step: the velocities are no longer zero
    before = [v.numpy() for v in [*state.model.trainable_variables, *state.optimizer.velocities]]
    state.loss_scale.assign(2.0 ** 100)  # the scaled gradients overflow float16
    step(iterator)
    after = [v.numpy() for v in [*state.model.trainable_variables, *state.optimizer.velocities]]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert float(state.loss_scale) == 2.0 ** 99


def test_use_fp16_means_bfloat16_on_a_cpu_and_is_the_default_where_it_is_fast(monkeypatch):
    assert trainer.compute_dtype(False) == tf.float32
    if tf.config.list_physical_devices("GPU"):
        assert trainer.compute_dtype(True) == trainer.compute_dtype(None) == tf.float16
        return
    assert trainer.compute_dtype(True) == tf.bfloat16
    for native in (True, False):
        monkeypatch.setattr(trainer, "_cpu_has_bfloat16", lambda: native)
        assert trainer.compute_dtype(None) == (tf.bfloat16 if native else tf.float32)
