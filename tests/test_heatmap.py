"""The confusion matrix picture (cifar10/heatmap.py) reads without the text report: class
names on both axes, which axis is which, a colour scale, a number in each cell. (That
the evaluator writes it to its event file: tests/test_export_predict.py.)"""
import numpy as np

from cifar10 import data, heatmap

LAYOUT = heatmap.HeatMapLayout.for_names(data.CLASS_NAMES)


def find(mask, image, colour):
    """Every (top, left) where the pixels of image (float [H, W, 3]) of exactly colour
    form mask (bool [h, w]), pixel for pixel, in this image's coordinates."""
    ink = (image == colour).all(axis=-1)
    height, width = mask.shape
    first_row, first_column = np.argwhere(mask)[0]
    tops, lefts = np.nonzero(ink)
    tops, lefts = tops - first_row, lefts - first_column
    inside = (tops >= 0) & (lefts >= 0) & (tops + height <= ink.shape[0]) & (lefts + width <= ink.shape[1])
    tops, lefts = tops[inside], lefts[inside]
    for (row, column), wanted in np.ndenumerate(mask):
        keep = ink[tops + row, lefts + column] == wanted
        tops, lefts = tops[keep], lefts[keep]
    return list(zip(tops.tolist(), lefts.tolist()))


def example_confusion():
    """int [10, 10]: 100 examples a class, 60 right, 30 taken for the next class, 10 for
    the one after, but none of class 9 (an empty row)."""
    confusion = np.zeros([data.NUM_CLASSES, data.NUM_CLASSES], np.int64)
    classes = np.arange(data.NUM_CLASSES)
    confusion[classes, classes] = 60
    confusion[classes, (classes + 1) % data.NUM_CLASSES] = 30
    confusion[classes, (classes + 2) % data.NUM_CLASSES] = 10
    confusion[9] = 0
    return confusion


def test_the_picture_has_the_layouts_shape_in_rgb_from_0_to_1():
    image = heatmap.confusion_heat_map(example_confusion(), data.CLASS_NAMES)
    assert image.shape == (LAYOUT.height, LAYOUT.width, 3) and image.dtype == np.float32
    assert image.min() == 0 and image.max() == 1
    # The longest name, the colour bar and the title fit.
    assert LAYOUT.matrix_left > heatmap.text_mask("automobile").shape[1]
    assert LAYOUT.width > LAYOUT.matrix_left + LAYOUT.matrix_side + heatmap.BAR_WIDTH


def test_class_names_head_the_rows_and_the_columns_and_the_axes_say_which_is_which():
    image = heatmap.confusion_heat_map(example_confusion(), data.CLASS_NAMES)
    matrix_bottom = LAYOUT.matrix_top + LAYOUT.matrix_side
    for index, name in enumerate(data.CLASS_NAMES):
        top, left, bottom, right = LAYOUT.cell_box(index, index)
        word = heatmap.text_mask(name)
        # Row label: left of the matrix, level with its row.
        [(word_top, word_left)] = find(word, image, heatmap.INK)
        assert top <= word_top and word_top + word.shape[0] <= bottom
        assert word_left + word.shape[1] <= LAYOUT.matrix_left
        # Column label: read upwards, below the matrix, under its column.
        [(word_top, word_left)] = find(np.rot90(word), image, heatmap.INK)
        assert word_top >= matrix_bottom
        assert left <= word_left and word_left + word.shape[0] <= right
    [(rows_top, rows_left)] = find(np.rot90(heatmap.text_mask("true class")), image, heatmap.INK)
    assert rows_left < LAYOUT.matrix_left - heatmap.text_mask("automobile").shape[1]
    assert LAYOUT.matrix_top <= rows_top < matrix_bottom
    [(columns_top, _)] = find(heatmap.text_mask("predicted class"), image, heatmap.INK)
    assert columns_top >= matrix_bottom + LAYOUT.label_width
    [(title_top, _)] = find(heatmap.text_mask(heatmap.TITLE), image, heatmap.INK)
    assert title_top + heatmap.text_mask(heatmap.TITLE).shape[0] <= LAYOUT.matrix_top
    assert "% of each true class" in heatmap.TITLE


def test_a_cells_colour_grows_with_its_count_and_the_colour_bar_runs_from_0_to_100_percent():
    confusion = np.zeros([data.NUM_CLASSES, data.NUM_CLASSES], np.int64)
    confusion[:] = np.arange(data.NUM_CLASSES)  # each row: 0, 1, ..., 9 of 45
    confusion[3, 3] += 45
    image = heatmap.confusion_heat_map(confusion, data.CLASS_NAMES)

    def colour(true_class, predicted_class):
        top, left, bottom, right = LAYOUT.cell_box(true_class, predicted_class)
        return np.median(image[top:bottom, left:right].reshape(-1, 3), axis=0)  # the number in it aside

    brightness = np.array([colour(0, j).mean() for j in range(data.NUM_CLASSES)])
    assert brightness[0] == 0 and np.all(np.diff(brightness) > 0)
    np.testing.assert_allclose(brightness, np.arange(data.NUM_CLASSES) / 45, atol=1e-6)
    np.testing.assert_allclose(colour(3, 3).mean(), 48 / 90, atol=1e-6)
    # The bar: the colours of 100% down to 0%, labelled at its ends, right of the matrix.
    bar_left = LAYOUT.matrix_left + LAYOUT.matrix_side + 2 * heatmap.GAP
    bar = image[LAYOUT.matrix_top:LAYOUT.matrix_top + LAYOUT.matrix_side, bar_left + heatmap.BAR_WIDTH // 2]
    np.testing.assert_allclose(bar[[0, -1]], heatmap.heat_colours([1.0, 0.0]))
    assert np.all(np.diff(bar.mean(axis=1)) <= 0)
    [(top_label, left_of_100)] = find(heatmap.text_mask("100%"), image, heatmap.INK)
    [(bottom_label, left_of_0)] = [place for place in find(heatmap.text_mask("0%"), image, heatmap.INK)
                                   if place[0] != top_label]  # not the end of "100%"
    assert top_label == LAYOUT.matrix_top and bottom_label > LAYOUT.matrix_top + LAYOUT.matrix_side / 2
    assert left_of_100 == left_of_0 > bar_left + heatmap.BAR_WIDTH


def test_each_cell_shows_its_percentage_of_the_row_in_a_colour_that_stands_out():
    image = heatmap.confusion_heat_map(example_confusion(), data.CLASS_NAMES)

    def shows(text, colour, true_class, predicted_class):
        top, left, bottom, right = LAYOUT.cell_box(true_class, predicted_class)
        return [(row - top, column - left) for row, column in find(heatmap.text_mask(text), image, colour)
                if top <= row < bottom and left <= column < right]

    assert shows("60", heatmap.INK, 2, 2)          # dark on the bright half of the scale
    assert shows("30", heatmap.BACKGROUND, 2, 3)   # light on the dark half
    assert shows("10", heatmap.BACKGROUND, 2, 4)
    top, left, bottom, right = LAYOUT.cell_box(2, 5)
    assert (image[top:bottom, left:right] == 0).all()  # no examples: black, no number
    assert heatmap.cell_text(1, 1000) == "<1" and heatmap.cell_text(5, 1000) == "1"
    assert heatmap.cell_text(0, 0) == ""
