"""The reader and the preprocessing, on record files the tests write."""
import numpy as np
import pytest
import tensorflow as tf

import cifar10_input
from cifar10 import data
from cifar10.errors import Cifar10Error
from conftest import records_bytes


def write_batch(path, labels, images):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(records_bytes(labels, images))
    return str(path)


def test_reader_returns_the_written_labels_and_pixels_in_rgb_order(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, size=37)
    images = rng.integers(0, 256, size=[37, 32, 32, 3], dtype=np.uint8)
    # One record with distinct planes: red 10, green 20, blue 30 everywhere.
    images[0] = [10, 20, 30]
    first = write_batch(tmp_path / "a.bin", labels[:20], images[:20])
    second = write_batch(tmp_path / "b.bin", labels[20:], images[20:])

    read = list(data.read_records([first, second]).as_numpy_iterator())

    assert len(read) == 37
    np.testing.assert_array_equal(np.stack([image for image, _ in read]), images)
    np.testing.assert_array_equal([label for _, label in read], labels)
    assert read[0][0].dtype == np.uint8 and read[0][1].dtype == np.int32
    np.testing.assert_array_equal(read[0][0][5, 7], [10, 20, 30])


def test_records_are_counted_from_file_sizes(tmp_path):
    images = np.zeros([7, 32, 32, 3], np.uint8)
    files = [write_batch(tmp_path / "a.bin", [1] * 3, images[:3]), write_batch(tmp_path / "b.bin", [2] * 4, images[3:])]
    assert data.count_records(files) == 7


def test_distorted_images_are_24x24_standardized_crops():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=[64, 32, 32, 3], dtype=np.uint8)
    out = data.distort_images(tf.constant(images)).numpy()
    assert out.shape == (64, 24, 24, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-3)


def test_distortion_crops_flips_and_varies_per_image():
    # A gradient image: every 24x24 window (and its mirror) has a distinct pattern, and
    # brightness/contrast/standardization keep the ordering of pixel values.
    ramp = np.arange(32 * 32 * 3).reshape(32, 32, 3) % 251
    images = np.broadcast_to(ramp, [200, 32, 32, 3]).astype(np.uint8)
    out = data.distort_images(tf.constant(images)).numpy()
    windows = set()
    for image in out:
        ordering = np.argsort(image[..., 0].ravel(), kind="stable")
        windows.add(tuple(ordering[:5]))
    assert len(windows) > 20  # many different crops and flips


def test_the_standardization_undoes_the_brightness_shift_but_not_the_contrast(monkeypatch):
    # As in the original tutorial: the image's mean, subtracted, takes the shift with it.
    images = tf.constant(np.random.default_rng(5).integers(0, 256, size=[64, 32, 32, 3], dtype=np.uint8))
    seed = tf.constant([1, 2])
    tutorial = data.distort_images(images, seed=seed).numpy()
    monkeypatch.setattr(data, "MAX_BRIGHTNESS_DELTA", 0.0)
    np.testing.assert_allclose(data.distort_images(images, seed=seed).numpy(), tutorial, atol=1e-4)
    monkeypatch.setattr(data, "CONTRAST_RANGE", (1.0, 1.0))
    assert np.abs(data.distort_images(images, seed=seed).numpy() - tutorial).max() > 0.1


def test_random_contrast_false_leaves_the_contrast_out_and_every_other_draw_as_it_was(monkeypatch):
    images = tf.constant(np.random.default_rng(6).integers(0, 256, size=[64, 32, 32, 3], dtype=np.uint8))
    seed = tf.constant([3, 4])
    tutorial = data.distort_images(images, seed=seed, cutout=8).numpy()
    without = data.distort_images(images, seed=seed, cutout=8, random_contrast=False).numpy()
    assert np.abs(without - tutorial).max() > 0.1
    monkeypatch.setattr(data, "CONTRAST_RANGE", (1.0, 1.0))  # the same crops, flips and squares, a factor of 1
    np.testing.assert_allclose(without, data.distort_images(images, seed=seed, cutout=8).numpy(), atol=1e-5)


def crop_offsets(images, distorted):
    """For each distorted image (random contrast left out), the (row, column) of the
    32x32 image's 24x24 crop that it is, mirrored or not."""
    offsets = []
    for image, out in zip(images, distorted):
        found = [(row, col) for row in range(9) for col in range(9) for crop in
                 [image[row:row + 24, col:col + 24].astype(np.float32)] for view in (crop, crop[:, ::-1])
                 if np.allclose((view - view.mean()) / view.std(), out, atol=1e-3)]
        assert len(found) == 1
        offsets.append(found[0])
    return np.array(offsets)


@pytest.mark.parametrize("crop_shift", [0, 2, 4])
def test_training_crops_lie_at_most_crop_shift_pixels_from_the_centre(crop_shift):
    images = np.random.default_rng(7).integers(0, 256, size=[200, 32, 32, 3], dtype=np.uint8)
    distorted = data.distort_images(tf.constant(images), seed=tf.constant([1, 2]), random_contrast=False,
                                    crop_shift=crop_shift).numpy()
    offsets = crop_offsets(images, distorted)
    # Every offset of the range, across and down, and none outside it.
    for axis in (0, 1):
        assert set(offsets[:, axis]) == set(range(4 - crop_shift, 4 + crop_shift + 1))


def test_cutout_blanks_one_square_per_image_clipped_at_the_borders():
    rng = np.random.default_rng(4)
    images = rng.integers(1, 256, size=[300, 32, 32, 3], dtype=np.uint8)
    out = data.distort_images(tf.constant(images), cutout=8).numpy()
    sides = set()
    for image in out:
        blank = np.all(image == 0, axis=-1)
        rows, cols = np.flatnonzero(blank.any(axis=1)), np.flatnonzero(blank.any(axis=0))
        # One solid rectangle: a whole 8x8 square, or its part inside the 24x24 image.
        assert blank.sum() == rows.size * cols.size
        assert np.all(np.diff(rows) == 1) and np.all(np.diff(cols) == 1)
        assert 4 <= rows.size <= 8 and 4 <= cols.size <= 8
        sides.update([rows.size, cols.size])
    assert sides == {4, 5, 6, 7, 8}
    assert not np.any(np.all(data.distort_images(tf.constant(images)).numpy() == 0, axis=-1))


def test_evaluation_images_are_the_standardized_central_crop():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=[5, 32, 32, 3], dtype=np.uint8)
    out = data.crop_and_standardize(tf.constant(images)).numpy()
    crop = images[:, 4:28, 4:28, :].astype(np.float64)
    mean = crop.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(crop.std(axis=(1, 2, 3), keepdims=True), 1 / np.sqrt(24 * 24 * 3))
    np.testing.assert_allclose(out, (crop - mean) / std, atol=1e-4)


def test_evaluation_views_are_the_central_and_corner_crops_and_their_mirror_images():
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=[3, 32, 32, 3], dtype=np.uint8)

    def standardized(crops):
        crops = crops.astype(np.float64)
        mean = crops.mean(axis=(1, 2, 3), keepdims=True)
        return (crops - mean) / np.maximum(crops.std(axis=(1, 2, 3), keepdims=True), 1 / np.sqrt(24 * 24 * 3))

    ten = data.evaluation_views(tf.constant(images), 10).numpy()
    assert ten.shape == (3, 10, 24, 24, 3)
    for i, (row, col) in enumerate([(4, 4), (0, 0), (0, 8), (8, 0), (8, 8)]):
        crops = images[:, row:row + 24, col:col + 24]
        np.testing.assert_allclose(ten[:, 2 * i], standardized(crops), atol=1e-4)
        np.testing.assert_allclose(ten[:, 2 * i + 1], standardized(crops[:, :, ::-1]), atol=1e-4)
    np.testing.assert_array_equal(data.evaluation_views(tf.constant(images), 2).numpy(), ten[:, :2])
    np.testing.assert_array_equal(data.crop_and_standardize(tf.constant(images)).numpy(), ten[:, 0])


def test_evaluation_dataset_yields_each_record_once_in_order(tmp_path):
    labels = np.arange(23) % 10
    images = np.zeros([23, 32, 32, 3], np.uint8)
    path = write_batch(tmp_path / "t.bin", labels, images)
    batches = list(data.evaluation_dataset([path], batch_size=5, num_examples=23).as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)
    assert batches[0][0].shape == (5, 24, 24, 3)
    limited = list(data.evaluation_dataset([path], batch_size=10, num_examples=12).as_numpy_iterator())
    assert sum(len(b[1]) for b in limited) == 12


def test_training_dataset_shuffles_whole_batches_of_all_records(tmp_path):
    labels = np.arange(100) % 10
    images = np.zeros([100, 32, 32, 3], np.uint8)
    path = write_batch(tmp_path / "t.bin", labels, images)
    batches = data.training_dataset([path], batch_size=20).take(5)
    seen = [b[1] for b in batches.as_numpy_iterator()]
    assert all(len(b) == 20 for b in seen)
    epoch = np.concatenate(seen)
    assert np.bincount(epoch, minlength=10).tolist() == [10] * 10  # the first epoch, each record once
    assert not np.array_equal(epoch, labels)  # in a shuffled order


@pytest.mark.parametrize("eval_data, names", [("test", ["test_batch.bin"]), (True, ["test_batch.bin"]),
                                              ("train_eval", [f"data_batch_{i}.bin" for i in range(1, 6)]),
                                              (False, [f"data_batch_{i}.bin" for i in range(1, 6)]),
                                              (None, [f"data_batch_{i}.bin" for i in range(1, 6)])])
def test_data_files_per_eval_data(eval_data, names):
    assert [p.rsplit("/", 1)[1] for p in data.data_files("/d", eval_data)] == names


@pytest.mark.parametrize("eval_data", [True, np.bool_(True), False, "test", "train_eval"])
def test_inputs_takes_the_original_tutorials_bool(tmp_path, eval_data):
    # Labels tell the sets apart: 7 in test_batch.bin, 2 in each training file.
    images = np.zeros([3, 32, 32, 3], np.uint8)
    write_batch(tmp_path / data.BATCHES_DIR / data.TEST_FILE, [7] * 3, images)
    for name in data.TRAIN_FILES:
        write_batch(tmp_path / data.BATCHES_DIR / name, [2] * 3, images)

    labels = np.concatenate([b[1] for b in cifar10_input.inputs(eval_data, str(tmp_path), 4).as_numpy_iterator()])

    assert labels.tolist() == ([7] * 3 if eval_data in (True, "test") else [2] * 15)


@pytest.mark.parametrize("eval_data", ["eval", "Test", None, 1, 0, "", b"test"])
def test_inputs_refuses_what_names_no_set(tmp_path, eval_data):
    with pytest.raises(Cifar10Error, match=f"eval_data={eval_data!r} names no CIFAR-10 set: pass 'test' or True "
                                           f"for test_batch.bin, 'train_eval' or False for the training files"):
        cifar10_input.inputs(eval_data, str(tmp_path), 4)
    if eval_data is not None:  # data_files's None is the training files, as the trainer reads them
        with pytest.raises(Cifar10Error, match="names no CIFAR-10 set"):
            data.data_files(str(tmp_path), eval_data)


def test_distorted_inputs_keeps_the_original_signature_and_reads_the_training_files_endlessly(tmp_path):
    # Labels tell the sets apart: 7 in test_batch.bin, 2 in each training file (3 records each).
    images = np.random.default_rng(3).integers(0, 256, size=[3, 32, 32, 3], dtype=np.uint8)
    write_batch(tmp_path / data.BATCHES_DIR / data.TEST_FILE, [7] * 3, images)
    for name in data.TRAIN_FILES:
        write_batch(tmp_path / data.BATCHES_DIR / name, [2] * 3, images)

    batches = list(cifar10_input.distorted_inputs(data_dir=str(tmp_path), batch_size=4).take(10).as_numpy_iterator())

    assert all(b[0].shape == (4, 24, 24, 3) and b[0].dtype == np.float32 for b in batches)  # 40 of 15 records
    assert np.concatenate([b[1] for b in batches]).tolist() == [2] * 40
    np.testing.assert_allclose(batches[0][0].mean(axis=(1, 2, 3)), 0, atol=1e-4)  # standardized per image
    (tmp_path / data.BATCHES_DIR / data.TRAIN_FILES[2]).unlink()
    with pytest.raises(Cifar10Error, match=f"{data.TRAIN_FILES[2]} is missing"):
        cifar10_input.distorted_inputs(str(tmp_path), 4)
