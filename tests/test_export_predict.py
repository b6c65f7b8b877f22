"""Export to a SavedModel, serve it with TensorFlow alone, label image files, and the
evaluator's per-class report; on one short training run on learnable stripe data."""
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import types
import zlib

import numpy as np
import pytest
import tensorflow as tf

import cifar10_export
import cifar10_predict
from cifar10 import checkpoints, config, data, errors, evaluator, export, heatmap, predict, trainer
from cifar10.model import Cifar10Model
from conftest import REPO, stripe_images

STEPS = 60
TOLERANCE = 1e-5
PREDICT_LINE = re.compile(r"^(\S+): (\w+) ([\d.]+), (\w+) ([\d.]+), (\w+) ([\d.]+)$", re.M)


@pytest.fixture(scope="module")
def trained(stripe_data, tmp_path_factory):
    """A short training run and its export: folders data, train, base (the export_dir), and
    served, the exported SavedModel loaded."""
    root = tmp_path_factory.mktemp("export")
    train_dir, base = str(root / "train"), str(root / "models")
    trainer.train(config.TrainConfig(data_dir=stripe_data, train_dir=train_dir, max_steps=STEPS, batch_size=32,
                                     save_checkpoint_secs=0))
    assert cifar10_export.main([f"--checkpoint_dir={train_dir}", f"--export_dir={base}"]) == 0
    served = tf.saved_model.load(os.path.join(base, str(STEPS)))
    return types.SimpleNamespace(data=stripe_data, train=train_dir, base=base, served=served)


def run_python(args, cwd):
    """Run python with args in cwd, importing nothing from this project's folder."""
    env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_export_writes_the_moving_averages_with_the_preprocessing_as_version_step(trained, capsys):
    assert sorted(os.listdir(trained.base)) == [str(STEPS)]  # no staging folder left behind
    images = stripe_images(np.arange(10), np.random.default_rng(1))
    averages = Cifar10Model()
    checkpoints.restore_averages(averages, tf.train.latest_checkpoint(trained.train))
    expected = tf.nn.softmax(averages(data.crop_and_standardize(images))).numpy()

    outputs = trained.served.signatures["serving_default"](images=tf.constant(images))

    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=TOLERANCE)
    np.testing.assert_array_equal(outputs["classes"].numpy(), expected.argmax(axis=1))

    # The same step again would replace a version TensorFlow Serving may be serving.
    assert cifar10_export.main([f"--checkpoint_dir={trained.train}", f"--export_dir={trained.base}"]) == 1
    assert f"{os.path.join(trained.base, str(STEPS))} exists already" in capsys.readouterr().err


def test_export_errors_name_the_path_and_the_fix(trained, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(errors.Cifar10Error, match=f"No checkpoint found in --checkpoint_dir={empty}.*Train first"):
        export.export(str(empty), str(tmp_path / "models"))

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(errors.Cifar10Error, match=f"Cannot write to --export_dir={not_a_folder}/models.*Pass a folder"):
        export.export(trained.train, str(not_a_folder / "models"))


def test_the_saved_model_serves_with_tensorflow_alone(trained, tmp_path):
    script = textwrap.dedent(f"""
        import importlib.util, json
        import numpy as np, tensorflow as tf
        assert importlib.util.find_spec("cifar10") is None, "the project is importable"
        model = tf.saved_model.load({os.path.join(trained.base, str(STEPS))!r})
        images = np.random.default_rng(0).integers(0, 256, [4, 32, 32, 3], dtype=np.uint8)
        out = model.signatures["serving_default"](images=tf.constant(images))
        print(json.dumps({{"probabilities": out["probabilities"].numpy().tolist(),
                          "classes": out["classes"].numpy().tolist(),
                          "class_names": [n.decode() for n in model.class_names.numpy()]}}))
    """)
    done = run_python(["-c", script], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    probabilities = np.array(out["probabilities"])
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=TOLERANCE)
    assert out["classes"] == probabilities.argmax(axis=1).tolist()
    assert out["class_names"] == list(data.CLASS_NAMES)


def test_both_signatures_agree_on_a_lossless_png(trained):
    images = stripe_images(np.arange(3), np.random.default_rng(2))

    raw = trained.served.signatures["serving_default"](images=tf.constant(images))
    encoded = trained.served.signatures[export.ENCODED_SIGNATURE](
        image_bytes=tf.stack([tf.io.encode_png(image) for image in images]))

    np.testing.assert_allclose(encoded["probabilities"].numpy(), raw["probabilities"].numpy(), atol=TOLERANCE)
    np.testing.assert_array_equal(encoded["classes"].numpy(), raw["classes"].numpy())


def test_the_highest_numbered_complete_version_is_chosen(tmp_path):
    for version in ("7", "60", "100", ".export-x"):
        (tmp_path / version).mkdir()
    for version in ("7", "60", ".export-x"):  # 100 is still being written
        (tmp_path / version / "saved_model.pb").write_bytes(b"")
    assert predict.resolve_version(str(tmp_path)) == str(tmp_path / "60")
    assert predict.resolve_version(str(tmp_path / "7")) == str(tmp_path / "7")
    with pytest.raises(errors.Cifar10Error, match=f"--model={tmp_path / '100'} holds no SavedModel"):
        predict.resolve_version(str(tmp_path / "100"))


def expected_probabilities(trained, image):
    """What predict should print for uint8 image [H, W, 3]: resized to 32x32 as the spec says."""
    resized = tf.image.resize(image, [data.IMAGE_SIZE, data.IMAGE_SIZE], antialias=True)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return trained.served.signatures["serving_default"](images=resized[None])["probabilities"][0].numpy()


def check_lines(trained, out, files):
    """The predict lines in out label files (name -> image) in order, top 3 right."""
    lines = PREDICT_LINE.findall(out)
    assert [line[0] for line in lines] == list(files), out
    for line, image in zip(lines, files.values()):
        expected = expected_probabilities(trained, image)
        top = (-expected).argsort()[:3]
        assert list(line[1::2]) == [data.CLASS_NAMES[i] for i in top], out
        np.testing.assert_allclose([float(p) for p in line[2::2]], expected[top], atol=1e-3)


def test_predict_labels_png_and_jpeg_of_any_size_and_names_the_files_it_cannot_read(trained, tmp_path):
    images = stripe_images(np.array([0, 5, 9]), np.random.default_rng(3))
    wide = tf.cast(tf.image.resize(images[0], [48, 64]), tf.uint8)
    tall = tf.cast(tf.image.resize(images[1], [70, 40]), tf.uint8)
    (tmp_path / "wide.png").write_bytes(tf.io.encode_png(wide).numpy())
    (tmp_path / "tall.jpg").write_bytes(tf.io.encode_jpeg(tall, quality=95).numpy())
    (tmp_path / "small.png").write_bytes(tf.io.encode_png(images[2]).numpy())
    (tmp_path / "notes.txt").write_text("not an image")
    decoded_jpeg = tf.io.decode_jpeg((tmp_path / "tall.jpg").read_bytes())

    done = run_python([str(REPO / "cifar10_predict.py"), f"--model={trained.base}",
                       "wide.png", "notes.txt", "tall.jpg", "missing.png", "small.png"], cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    check_lines(trained, done.stdout, {"wide.png": wide, "tall.jpg": decoded_jpeg, "small.png": images[2]})
    assert re.search(r"^notes\.txt: .*not a JPEG, PNG", done.stderr, re.M), done.stderr
    assert re.search(r"^missing\.png: .*No such file", done.stderr, re.M), done.stderr


def test_predict_from_the_checkpoint_matches_the_exported_version(trained, tmp_path, capsys):
    image = stripe_images(np.array([3]), np.random.default_rng(4))[0]
    path = str(tmp_path / "cat.png")
    tf.io.write_file(path, tf.io.encode_png(image))

    assert cifar10_predict.main([f"--checkpoint_dir={trained.train}", path]) == 0
    from_checkpoint = capsys.readouterr().out
    assert cifar10_predict.main([f"--model={os.path.join(trained.base, str(STEPS))}", path]) == 0

    assert from_checkpoint == capsys.readouterr().out
    check_lines(trained, from_checkpoint, {path: image})


def png_declaring(width, height):
    """A PNG of a few dozen bytes whose IHDR declares width x height RGB pixels: a valid
    signature, IHDR, a tiny IDAT and IEND, never to be decoded whole."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def jpeg_declaring(width, height):
    """A small JPEG whose frame header (SOF0) is changed to declare width x height."""
    jpeg = tf.io.encode_jpeg(np.zeros([8, 8, 3], np.uint8)).numpy()
    sof = jpeg.index(b"\xff\xc0")  # marker, length (2 bytes), precision (1), height (2), width (2)
    return jpeg[:sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9:]


def gif_declaring(width, height):
    """A GIF header whose logical screen is width x height, with one frame descriptor."""
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
            + b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00;")


def bmp_declaring(width, height):
    """A BMP file and info header declaring width x height 24-bit pixels, and a few of them."""
    return (b"BM" + struct.pack("<IHHI", 70, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0) + b"\x80" * 16)


@pytest.mark.parametrize("encoded", [png_declaring(20000, 20000), jpeg_declaring(20000, 20000),
                                     gif_declaring(20000, 20000), bmp_declaring(20000, -20000)],
                         ids=["png", "jpeg", "gif", "bmp"])
def test_the_saved_model_refuses_an_image_that_declares_too_many_pixels_before_decoding(trained, encoded):
    small = tf.io.encode_png(stripe_images(np.arange(1), np.random.default_rng(5))[0]).numpy()
    predict_encoded = trained.served.signatures[export.ENCODED_SIGNATURE]
    assert predict_encoded(image_bytes=tf.constant([small]))["probabilities"].shape == (1, 10)

    start = time.monotonic()
    with pytest.raises(tf.errors.InvalidArgumentError, match="The image declares 20000x20000 pixels, more than "
                                                             "the 16,777,216 this model decodes"):
        predict_encoded(image_bytes=tf.constant([small, encoded]))
    assert time.monotonic() - start < 10  # refused from the header, not decoded (1.2 GB) first


def test_the_saved_model_refuses_formats_whose_size_it_does_not_check(trained):
    webp = b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\xff\xff\xff\x0f" + b"\0" * 9  # 16384x16384
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a JPEG, PNG, GIF or BMP image"):
        trained.served.signatures[export.ENCODED_SIGNATURE](image_bytes=tf.constant([webp]))


def test_predict_skips_images_above_the_limits_with_one_line_each(trained, tmp_path, capsys):
    image = stripe_images(np.array([4]), np.random.default_rng(6))[0]
    (tmp_path / "small.png").write_bytes(tf.io.encode_png(image).numpy())
    (tmp_path / "bomb.png").write_bytes(png_declaring(23000, 23000))  # 8 GB decoded, from 0.1 kB
    with open(tmp_path / "huge.png", "wb") as f:  # sparse: no disk used
        f.write(png_declaring(64, 64))
        f.truncate(export.MAX_IMAGE_FILE_BYTES + 1)
    paths = [str(tmp_path / name) for name in ("bomb.png", "small.png", "huge.png")]

    start = time.monotonic()
    status = cifar10_predict.main([f"--model={trained.base}", *paths])
    out, err = capsys.readouterr()

    assert status == 1 and time.monotonic() - start < 30
    check_lines(trained, out, {paths[1]: image})
    assert f"{paths[0]}: skipped, it declares 23000x23000 pixels, more than the limit of 16,777,216; " \
           "scale it down first\n" in err
    assert f"{paths[2]}: skipped, larger than {export.MAX_IMAGE_FILE_BYTES:,} bytes, the limit for an image " \
           "file\n" in err
    assert "Traceback" not in err and "2 of 3 files could not be labelled" in err


def test_predict_skips_an_image_there_is_not_enough_memory_for(tmp_path, capsys):
    def out_of_memory(image_bytes):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    predictor = types.SimpleNamespace(predict_encoded=out_of_memory, class_names=tf.constant(data.CLASS_NAMES))
    path = str(tmp_path / "cat.png")
    tf.io.write_file(path, tf.io.encode_png(np.zeros([32, 32, 3], np.uint8)))

    with pytest.raises(errors.Cifar10Error, match="1 of 1 files could not be labelled"):
        predict.label_files(predictor, [path], 3)
    assert capsys.readouterr().err == f"{path}: skipped, not enough memory to decode it; scale it down first\n"


def test_predict_takes_a_version_folder_named_with_leading_zeros(trained, tmp_path, capsys):
    base = tmp_path / "models"
    shutil.copytree(os.path.join(trained.base, str(STEPS)), base / "007")
    (base / "3").mkdir()
    (base / "3" / "saved_model.pb").write_bytes(b"")
    image = stripe_images(np.array([8]), np.random.default_rng(7))[0]
    path = str(tmp_path / "ship.png")
    tf.io.write_file(path, tf.io.encode_png(image))

    assert predict.resolve_version(str(base)) == str(base / "007")
    assert cifar10_predict.main([f"--model={base}", path]) == 0
    check_lines(trained, capsys.readouterr().out, {path: image})


def truncate_graph(version):
    path = version / "saved_model.pb"
    path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize("damage", [truncate_graph, lambda version: shutil.rmtree(version / "variables")],
                         ids=["truncated saved_model.pb", "no variables folder"])
def test_predict_names_a_damaged_saved_model_and_the_fix(trained, tmp_path, capsys, damage):
    version = tmp_path / "models" / str(STEPS)
    shutil.copytree(os.path.join(trained.base, str(STEPS)), version)
    damage(version)
    image = tmp_path / "cat.png"
    image.write_bytes(tf.io.encode_png(np.zeros([32, 32, 3], np.uint8)).numpy())

    status = cifar10_predict.main([f"--model={tmp_path / 'models'}", str(image)])
    err = capsys.readouterr().err

    assert status == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: Cannot load the SavedModel in {version}: "), err
    assert "Export it again with cifar10_export.py; if a newer TensorFlow wrote it, upgrade TensorFlow" in err


def test_an_export_that_loses_the_race_for_its_version_leaves_the_winner_be(trained, tmp_path, monkeypatch, capsys):
    """Two exports of the same step at once: the other one's version folder appears
    while this one saves (made deterministic by saving through a stand-in that lets it)."""
    base = tmp_path / "models"
    winner = base / str(STEPS)
    save = tf.saved_model.save

    def save_while_another_export_finishes(*args, **kwargs):
        save(*args, **kwargs)
        winner.mkdir()
        (winner / "saved_model.pb").write_bytes(b"the winner's")

    monkeypatch.setattr(tf.saved_model, "save", save_while_another_export_finishes)
    status = cifar10_export.main([f"--checkpoint_dir={trained.train}", f"--export_dir={base}"])
    err = capsys.readouterr().err

    assert status == 1 and "Traceback" not in err, err
    assert f"error: {winner} exists already: step {STEPS} of {trained.train} was exported before" in err
    assert os.listdir(base) == [str(STEPS)]  # no staging folder left
    assert os.listdir(winner) == ["saved_model.pb"] and (winner / "saved_model.pb").read_bytes() == b"the winner's"


def parse_report(out):
    """From the evaluator's printed report: correct, count, step, the per-class lines as
    (name, recall text, correct, examples), the printed confusion matrix int [10, 10]."""
    correct, count, step = map(int, re.search(r"precision @ 1 = [\d.]+ \(accuracy: (\d+)/(\d+) at step (\d+)\)$",
                                              out, re.M).groups())
    classes = [(name, recall, int(right), int(examples)) for name, recall, right, examples
               in re.findall(r"^  (\w+) +recall (\S+) \((\d+)/(\d+)\)$", out, re.M)]
    assert [c[0] for c in classes] == list(data.CLASS_NAMES), out
    table = out[out.index("confusion matrix"):].splitlines()
    assert table[1].split() == list(data.CLASS_NAMES), out
    rows = [row.split() for row in table[2:2 + data.NUM_CLASSES]]
    assert [row[0] for row in rows] == list(data.CLASS_NAMES), out
    return correct, count, step, classes, np.array([[int(n) for n in row[1:]] for row in rows])


def confusion_images(eval_dir):
    """(step, image float [H, W, 3] in [0, 1]) of each confusion_matrix summary in eval_dir."""
    return [(event.step, tf.io.decode_png(tf.make_ndarray(value.tensor)[2]).numpy() / 255.0)
            for events in glob.glob(os.path.join(eval_dir, "events.out.tfevents.*"))
            for event in tf.compat.v1.train.summary_iterator(events)
            for value in event.summary.value if value.tag == "confusion_matrix"]


def test_the_per_class_report_and_confusion_matrix_add_up_to_precision_at_1(trained, tmp_path, capsys):
    eval_dir = str(tmp_path / "eval")
    result = evaluator.evaluate(config.EvalConfig(data_dir=trained.data, checkpoint_dir=trained.train,
                                                  eval_dir=eval_dir, num_examples=150, run_once=True, batch_size=64))
    correct, count, step, classes, confusion = parse_report(capsys.readouterr().out)

    assert count == result.count == 150 and step == STEPS  # --num_examples below the set's 200 records
    assert sum(c[2] for c in classes) == correct and sum(c[3] for c in classes) == count
    for _, recall, right, examples in classes:
        assert recall == f"{right / examples:.3f}"
    assert confusion.sum() == count and np.trace(confusion) == correct
    np.testing.assert_array_equal(confusion, result.confusion)
    assert [step for step, _ in confusion_images(eval_dir)] == [STEPS]


def test_the_report_has_true_classes_in_rows_and_a_row_normalized_heat_map(tmp_path, capsys):
    confusion = np.zeros([data.NUM_CLASSES, data.NUM_CLASSES], np.int64)
    confusion[np.arange(10), (np.arange(10) * 3) % 10] = np.arange(1, 11)  # class i mostly taken for 3i mod 10
    confusion[np.arange(10), np.arange(10)] += 2
    confusion[5] = 0  # no examples of dog
    writer = tf.summary.create_file_writer(str(tmp_path))

    evaluator.report(evaluator.EvalResult("model.ckpt-7", 7, confusion), writer)

    correct, count, step, classes, printed = parse_report(capsys.readouterr().out)
    np.testing.assert_array_equal(printed, confusion)
    assert (correct, count, step) == (np.trace(confusion), confusion.sum(), 7)
    assert classes[5] == ("dog", "nan", 0, 0) and classes[1] == ("automobile", "0.500", 2, 4)
    [(image_step, heat_map)] = confusion_images(str(tmp_path))
    assert image_step == 7
    # The labelled picture of cifar10/heatmap.py (tests/test_heatmap.py), as 8-bit PNG.
    np.testing.assert_allclose(heat_map, heatmap.confusion_heat_map(confusion, data.CLASS_NAMES), atol=1 / 255)
    # Each cell's brightness (mean of the channels of its colour, the median pixel, the
    # number written in it aside) is its row-normalized count.
    layout = heatmap.HeatMapLayout.for_names(data.CLASS_NAMES)
    brightness = np.array([[np.median(heat_map[top:bottom, left:right].reshape(-1, 3), axis=0).mean()
                            for top, left, bottom, right in (layout.cell_box(i, j) for j in range(data.NUM_CLASSES))]
                           for i in range(data.NUM_CLASSES)])
    row_normalized = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    np.testing.assert_allclose(brightness, row_normalized, atol=2 / 255)


def test_multi_view_prediction_takes_the_class_of_the_highest_mean_probability():
    # A stand-in model whose logits pick the class written in a view's first pixel.
    predict = evaluator.make_predict(lambda views: 5.0 * tf.one_hot(tf.cast(views[:, 0, 0, 0], tf.int32), 10))
    views = np.zeros([2, 3, 24, 24, 3], np.float32)
    views[0, :, 0, 0, 0] = [2, 2, 7]  # two views of three say 2
    views[1, :, 0, 0, 0] = [1, 9, 9]
    np.testing.assert_array_equal(predict(tf.constant(views)).numpy(), [2, 9])
    np.testing.assert_array_equal(predict(tf.constant(views[:, 2])).numpy(), [7, 9])  # a single view each
