"""Distillation: each training target mixes the record's label with a teacher
checkpoint's 10-view predictions for that very record; a run records its teacher and
resumes only with it; a teacher that is missing or not meant is refused, changing nothing."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import cifar10_train
from cifar10 import checkpoints, data, distillation, evaluator
from cifar10.model import Cifar10Model
from conftest import run, train
from test_resume import folder_digest

HELD_OUT = 100  # of the 500 stripe records: training reads the first 400


@pytest.mark.parametrize("pipelines", [1, 2])
def test_each_training_target_mixes_its_label_with_the_teacher_row_of_its_own_record(stripe_data, pipelines):
    filenames = data.data_files(stripe_data)
    kept = data.records_in(filenames) - HELD_OUT
    labels_in_file_order = np.concatenate([labels.numpy() for _, labels in data.read_records(filenames).batch(1000)])
    teacher = np.random.default_rng(0).dirichlet(np.ones(data.NUM_CLASSES), size=kept).astype(np.float32)
    weight = 0.25
    seen = []
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pipeline)
        # One batch is this pipeline's whole share of an epoch.
        dataset = data.training_dataset(filenames, kept // pipelines, context, validation_records=HELD_OUT,
                                        seed=(3, 0), teacher=teacher, distillation=weight)
        _, targets = next(iter(dataset))
        targets = targets.numpy()
        labels = targets.argmax(axis=1)  # the label's share, 0.75, outweighs any teacher's 0.25
        teacher_rows = (targets - (1 - weight) * np.eye(data.NUM_CLASSES)[labels]) / weight
        # Which record each target came from: the one teacher row it matches.
        distances = np.abs(teacher_rows[:, None, :] - teacher[None, :, :]).max(axis=2)
        records = distances.argmin(axis=1)
        np.testing.assert_allclose(teacher_rows, teacher[records], atol=1e-5)
        np.testing.assert_array_equal(labels, labels_in_file_order[records])
        seen.extend(records)
    assert sorted(seen) == list(range(kept))  # every record read, once: none of the held-out ones


def test_the_teacher_predicts_each_record_as_the_ten_view_evaluation(capsys, stripe_data, tmp_path):
    train(capsys, stripe_data, tmp_path / "teacher", "--batch_size=50", "--max_steps=3", "--save_summaries_steps=0")
    path = str(tmp_path / "teacher" / "model.ckpt-3")
    filenames = data.data_files(stripe_data)
    probabilities = distillation.teacher_probabilities(path, filenames, 400)
    out = capsys.readouterr().out
    assert probabilities.shape == (400, data.NUM_CLASSES) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    model = Cifar10Model()
    checkpoints.restore_averages(model, path)
    predict = evaluator.make_predict(model)
    predicted, labels = [], []
    for views, batch_labels in data.evaluation_dataset(filenames, 64, 400, views=10):
        predicted.append(predict(views).numpy())
        labels.append(batch_labels.numpy())
    predicted, labels = np.concatenate(predicted), np.concatenate(labels)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), predicted)
    right = int(np.sum(predicted == labels))
    assert f"predicting the 400 training records with the teacher, {path} (10 views of each)" in out
    assert f"precision @ 1 on these training records, 10 views: {right / 400:.3f} ({right}/400)" in out


def test_a_distilled_run_records_its_teacher_and_resumes_only_with_it(capsys, stripe_data, tmp_path):
    teacher_dir, student_dir = tmp_path / "teacher", tmp_path / "student"
    quiet = ("--batch_size=50", "--save_summaries_steps=0")
    train(capsys, stripe_data, teacher_dir, *quiet, "--max_steps=4")
    distil = ("--distillation=0.5", f"--teacher_dir={teacher_dir}")
    out = train(capsys, stripe_data, student_dir, *quiet, *distil, "--max_steps=2")
    assert "starting at step 0 of 2 (tutorial recipe with --distillation=0.5, " in out
    assert f"predicting the 500 training records with the teacher, {teacher_dir}/model.ckpt-4 " in out
    state = checkpoints.TrainState()
    state.restore(str(student_dir / "model.ckpt-2"))
    assert state.description.fields["teacher"] == f"{teacher_dir}/model.ckpt-4"
    assert state.description.fields["recipe_values"]["distillation"] == 0.5

    # The teacher trains on; the student resumes with the checkpoint it started with.
    train(capsys, stripe_data, teacher_dir, *quiet, "--max_steps=6")
    out = train(capsys, stripe_data, student_dir, *quiet, *distil, "--max_steps=3")
    assert f"resuming from {student_dir}/model.ckpt-2 at step 2 of 3" in out
    assert f"with the teacher, {teacher_dir}/model.ckpt-4 " in out

    # Another folder of the teacher's checkpoints, without that one: refused.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(teacher_dir, elsewhere)
    for name in os.listdir(elsewhere):
        if name.startswith("model.ckpt-4."):
            os.remove(elsewhere / name)
    before = folder_digest(student_dir)
    status, out, err = run(capsys, cifar10_train.main, f"--data_dir={stripe_data}", f"--train_dir={student_dir}",
                           *quiet, "--distillation=0.5", f"--teacher_dir={elsewhere}", "--max_steps=4")
    assert status == 1 and "Traceback" not in err
    assert (f"error: This run's teacher was {teacher_dir}/model.ckpt-4, but {elsewhere}/model.ckpt-4 cannot be "
            "loaded: its files are missing. A resumed run keeps its teacher: pass the --teacher_dir that holds "
            "model.ckpt-4, or a new --train_dir") in err
    # Another weight: refused as any other change of recipe.
    status, out, err = run(capsys, cifar10_train.main, f"--data_dir={stripe_data}", f"--train_dir={student_dir}",
                           *quiet, "--distillation=0.25", f"--teacher_dir={teacher_dir}", "--max_steps=4")
    assert status == 1 and "differs (distillation: 0.5 -> 0.25)" in err
    assert f"pass --recipe=tutorial --distillation=0.5 --teacher_dir={teacher_dir} to resume it" in err
    assert folder_digest(student_dir) == before

    # The folder moved, with the checkpoint in it: the run goes on.
    moved = tmp_path / "moved"
    shutil.copytree(teacher_dir, moved)
    out = train(capsys, stripe_data, student_dir, *quiet, "--distillation=0.5", f"--teacher_dir={moved}",
                "--max_steps=4")
    assert f"with the teacher, {moved}/model.ckpt-4 " in out


@pytest.mark.parametrize("flags, message", [
    (["--distillation=0.5"], "--distillation=0.5 needs a teacher: pass --teacher_dir=DIR, the --train_dir of "
                             "another run."),
    (["--teacher_dir={teacher}"], "--teacher_dir={teacher} is the teacher of distillation, which is off "
                                  "(--distillation=0): pass --distillation=W too"),
    (["--distillation=1.5", "--teacher_dir={teacher}"], "--distillation=1.5: it must be 0 (none) to 1 (the "
                                                        "teacher's predictions alone, without the labels)."),
    (["--distillation=1", "--teacher_dir={train}"], "--teacher_dir={train} is --train_dir: a run cannot be its own "
                                                    "teacher."),
    (["--distillation=1", "--teacher_dir={teacher}"], "No checkpoint found in --teacher_dir={teacher}."),
], ids=["no teacher", "no distillation", "above 1", "itself", "no checkpoint"])
def test_distillation_without_a_teacher_that_loads_is_refused_and_nothing_is_made(capsys, stripe_data, tmp_path,
                                                                                   flags, message):
    folders = {"teacher": tmp_path / "teacher", "train": tmp_path / "train"}
    folders["teacher"].mkdir()
    status, out, err = run(capsys, cifar10_train.main, f"--data_dir={stripe_data}", f"--train_dir={folders['train']}",
                           *(flag.format(**folders) for flag in flags))
    assert status == 1 and "Traceback" not in err
    assert err.startswith(f"error: {message.format(**folders)}"), err
    assert not folders["train"].exists() and os.listdir(folders["teacher"]) == []
