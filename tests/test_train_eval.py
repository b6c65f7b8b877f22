"""Training and evaluation end to end, through the entry points, on learnable data."""
import dataclasses
import glob
import re

import numpy as np
import pytest
import tensorflow as tf

from cifar10 import evaluator, trainer
from cifar10.config import RECIPES, TrainConfig
from conftest import PROGRESS, STEP_LINE, evaluate, logged_steps, train, write_stripe_data

def evaluated_precision(capsys, data_dir, train_dir, tmp_path, *flags):
    """cifar10_eval.py --run_once, which must succeed: (precision @ 1, stdout)."""
    status, out, err = evaluate(capsys, data_dir, train_dir, tmp_path, *flags)
    assert status == 0, out + err
    return float(re.search(r"precision @ 1 = ([\d.]+)", out).group(1)), out


@pytest.fixture(scope="module")
def learnable_data(tmp_path_factory):
    return write_stripe_data(tmp_path_factory.mktemp("learnable"), records_per_file=400, test_records=500)


def test_200_steps_learn_stripes_and_the_evaluator_reaches_high_precision(capsys, learnable_data, tmp_path):
    train_dir = tmp_path / "train"
    out = train(capsys, learnable_data, train_dir, "--max_steps=200", "--batch_size=64", "--log_frequency=20",
                "--seed=1")  # seeded, as every test that asserts learning: no unlucky draw in CI

    steps = [(int(s), float(loss)) for _, s, loss, _, _ in STEP_LINE.findall(out)]
    assert [s for s, _ in steps] == list(range(20, 201, 20))
    assert steps[-1][1] < steps[0][1] - 0.5, out  # the loss fell
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("model.ckpt-200")

    precision, eval_out = evaluated_precision(capsys, learnable_data, train_dir, tmp_path, "--num_examples=500")
    assert precision >= 0.90, eval_out
    assert "(accuracy: 500/500 at step 200)" in eval_out  # every test example counted once
    precision, eval_out = evaluated_precision(capsys, learnable_data, train_dir, tmp_path, "--num_examples=500", "--views=10")
    assert precision >= 0.90 and "(accuracy: 500/500 at step 200, 10 views)" in eval_out, eval_out

    tags = set()
    for events in glob.glob(str(train_dir / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(events):
            tags.update(value.tag for value in event.summary.value)
    for tag in ["loss/raw", "loss/moving_average", "learning_rate", "activations/conv1", "sparsity/local3",
                "weights/conv1/weights", "gradients/local4/biases", "images"]:
        assert tag in tags, sorted(tags)


def test_a_run_with_a_known_end_logs_its_epoch_and_eta_after_the_classic_line(capsys, stripe_data, tmp_path):
    # 500 records, batch 25: 20 steps an epoch.
    out = train(capsys, stripe_data, tmp_path / "train", "--max_steps=40", "--batch_size=25")
    assert logged_steps(out) == [10, 20, 30, 40]
    progress = PROGRESS.findall(out)
    assert [(epoch, done) for epoch, done, *_ in progress] == [("0.5", "25"), ("1.0", "50"), ("1.5", "75"),
                                                               ("2.0", "100")]
    assert progress[0][2:] == ("", "", "")  # one line is no pace yet
    assert all(hours for _, _, hours, _, _ in progress[1:])  # then the ETA
    assert progress[-1][2:] == ("0", "00", "00")  # nothing left at the end


def test_an_open_ended_run_keeps_the_tutorials_log_line_byte_for_byte(capsys, stripe_data, tmp_path):
    config = TrainConfig(data_dir=stripe_data, train_dir=str(tmp_path / "train"))  # tutorial, default max_steps
    training = trainer.build(config, tf.distribute.get_strategy())
    try:
        capsys.readouterr()
        training.log(10, 2.3456)
        line = capsys.readouterr().out
    finally:
        training.close()
    assert re.fullmatch(r"\S+ \S+: step 10, loss = 2.35 \([\d.]+ examples/sec; [\d.]+ sec/batch\)\n", line), line


def test_a_long_evaluation_shows_its_progress(capsys, monkeypatch, stripe_data, tmp_path):
    train(capsys, stripe_data, tmp_path / "train", "--max_steps=5", "--batch_size=16", "--save_summaries_steps=0")
    monkeypatch.setattr(evaluator, "PROGRESS_SECS", 0.0)  # as if each batch took long
    status, out, err = evaluate(capsys, stripe_data, tmp_path / "train", tmp_path, "--batch_size=50")
    assert status == 0, err
    said = re.findall(r"evaluated (\d+)/200 records \((\d+)%\), ETA \d+:\d\d:\d\d$", out, re.M)
    assert said == [("50", "25"), ("100", "50"), ("150", "75"), ("200", "100")]
    assert out.index("evaluated 200/200") < out.index("precision @ 1 = ")


def test_precision_counts_a_partial_last_batch_exactly(capsys, stripe_data, tmp_path):
    train(capsys, stripe_data, tmp_path / "train", "--max_steps=5", "--batch_size=16", "--save_summaries_steps=0")
    result_lines = []
    for batch_size in (64, 200, 7):
        _, out = evaluated_precision(capsys, stripe_data, tmp_path / "train", tmp_path, f"--batch_size={batch_size}",
                          "--num_examples=150")
        result_lines.append(re.search(r"\(accuracy: (\d+)/(\d+) at step 5\)", out).groups())
    assert {total for _, total in result_lines} == {"150"}
    assert len({correct for correct, _ in result_lines}) == 1  # the batch size changes nothing


def test_the_evaluator_counts_every_record_of_the_chosen_set_by_default(capsys, stripe_data, tmp_path):
    train(capsys, stripe_data, tmp_path / "train", "--max_steps=2", "--batch_size=16", "--save_summaries_steps=0")
    _, out = evaluated_precision(capsys, stripe_data, tmp_path / "train", tmp_path)
    assert re.search(r"\(accuracy: \d+/200 at step 2\)", out), out  # all of test_batch.bin
    _, out = evaluated_precision(capsys, stripe_data, tmp_path / "train", tmp_path, "--eval_data=train_eval")
    assert re.search(r"\(accuracy: \d+/500 at step 2\)", out), out  # all five training files


def test_a_run_resumes_from_the_latest_checkpoint_and_continues_the_step_count(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    train(capsys, stripe_data, train_dir, "--max_steps=20", "--batch_size=16", "--log_frequency=5")
    reader = tf.train.load_checkpoint(str(train_dir))
    weights_at_20 = reader.get_tensor("model/conv1/weights/.ATTRIBUTES/VARIABLE_VALUE")

    out = train(capsys, stripe_data, train_dir, "--max_steps=30", "--batch_size=16", "--log_frequency=5")

    assert "resuming from" in out and "model.ckpt-20 at step 20" in out
    assert logged_steps(out) == [25, 30]
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("model.ckpt-30")
    reader = tf.train.load_checkpoint(str(train_dir))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 30
    # It went on from the saved weights rather than from a fresh start.
    moved = reader.get_tensor("model/conv1/weights/.ATTRIBUTES/VARIABLE_VALUE") - weights_at_20
    assert 0 < np.abs(moved).max() < 0.1


def test_checkpoints_are_saved_every_n_steps_and_at_the_end(capsys, stripe_data, tmp_path):
    train_dir = tmp_path / "train"
    train(capsys, stripe_data, train_dir, "--max_steps=25", "--batch_size=8", "--save_checkpoint_steps=10",
          "--save_checkpoint_secs=0")
    state = tf.train.get_checkpoint_state(str(train_dir))
    assert [p.rsplit("-", 1)[1] for p in state.all_model_checkpoint_paths] == ["10", "20", "25"]


def test_the_fast_recipe_in_mixed_precision_runs_its_epochs_and_learns(capsys, monkeypatch, stripe_data, tmp_path):
    # The fast recipe cut to 7 epochs: bfloat16 is slow on a CPU without native support.
    monkeypatch.setitem(RECIPES, "fast", dataclasses.replace(RECIPES["fast"], epochs=7))
    train_dir = tmp_path / "train"
    out = train(capsys, stripe_data, train_dir, "--recipe=fast", "--use_fp16", "--batch_size=50",
                "--log_frequency=10", "--save_summaries_steps=0", "--seed=1")
    # 500 records, 10 steps an epoch.
    last = int(RECIPES["fast"].epochs * 10)
    assert f"at step 0 of {last} (fast recipe, seed 1, bfloat16 compute)" in out
    assert logged_steps(out)[-1] == last
    precision, eval_out = evaluated_precision(capsys, stripe_data, train_dir, tmp_path, "--num_examples=200")
    assert precision >= 0.9, eval_out

    # The float32 trainer resumes the mixed-precision checkpoint (one format), and the
    # run, its recipe's epochs done, trains no further.
    out = train(capsys, stripe_data, train_dir, f"--max_steps={last + 10}", "--batch_size=50", "--log_frequency=5",
                "--recipe=fast", "--use_fp16=false")
    assert f"model.ckpt-{last} at step {last} of {last} (fast recipe, float32 compute)" in out


def test_histogram_summaries_count_every_value_into_tensorboards_buckets(tmp_path):
    values = np.random.default_rng(6).normal(size=[50, 7]).astype(np.float32)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        trainer._histogram("weights/example", tf.constant(values), tf.constant(3, tf.int64))
        trainer._histogram("weights/constant", tf.fill([4], 2.5), tf.constant(3, tf.int64))
    writer.flush()
    written = {}
    for events in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(events):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "histograms" and event.step == 3
                written[value.tag] = tf.make_ndarray(value.tensor)
    counts, edges = np.histogram(values, bins=trainer.HISTOGRAM_BUCKETS)
    buckets = written["weights/example"]
    np.testing.assert_allclose(buckets[:, 0], edges[:-1], rtol=1e-6)
    np.testing.assert_allclose(buckets[:, 1], edges[1:], rtol=1e-6)
    np.testing.assert_array_equal(buckets[:, 2], counts)
    assert written["weights/constant"][:, 2].sum() == 4 and written["weights/constant"][0, 0] == 2.5
