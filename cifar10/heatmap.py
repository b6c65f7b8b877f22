"""The confusion matrix as a picture that reads on its own, drawn with numpy only (the
evaluator runs in the main job, without a plotting library).

Rows are the true classes and columns the predicted ones, each headed by its class name;
a cell's colour and the number in it are the percentage of its row's (true class's)
examples predicted as its column's class; a colour bar beside the matrix runs from 0%
to 100%. Text is drawn with the 5x8 bitmap font below, enlarged TEXT_SCALE times.
"""
import dataclasses

import numpy as np

# Each glyph: 7 rows of 5 pixels, "#" ink, and an 8th for the descenders of g, j, p, q
# and y. Only the characters the picture needs.
_GLYPH_ROWS = {
    " ": ".....|.....|.....|.....|.....|.....|.....",
    "a": ".....|.....|.###.|....#|.####|#...#|.####",
    "b": "#....|#....|#.##.|##..#|#...#|#...#|####.",
    "c": ".....|.....|.###.|#....|#....|#...#|.###.",
    "d": "....#|....#|.##.#|#..##|#...#|#...#|.####",
    "e": ".....|.....|.###.|#...#|#####|#....|.###.",
    "f": "..##.|.#..#|.#...|###..|.#...|.#...|.#...",
    "g": ".....|.....|.####|#...#|#...#|.####|....#|.###.",
    "h": "#....|#....|#.##.|##..#|#...#|#...#|#...#",
    "i": "..#..|.....|.##..|..#..|..#..|..#..|.###.",
    "j": "...#.|.....|..##.|...#.|...#.|...#.|#..#.|.##..",
    "k": "#....|#....|#..#.|#.#..|##...|#.#..|#..#.",
    "l": ".##..|..#..|..#..|..#..|..#..|..#..|.###.",
    "m": ".....|.....|##.#.|#.#.#|#.#.#|#...#|#...#",
    "n": ".....|.....|#.##.|##..#|#...#|#...#|#...#",
    "o": ".....|.....|.###.|#...#|#...#|#...#|.###.",
    "p": ".....|.....|####.|#...#|#...#|####.|#....|#....",
    "q": ".....|.....|.####|#...#|#...#|.####|....#|....#",
    "r": ".....|.....|#.##.|##..#|#....|#....|#....",
    "s": ".....|.....|.####|#....|.###.|....#|####.",
    "t": ".#...|.#...|###..|.#...|.#...|.#..#|..##.",
    "u": ".....|.....|#...#|#...#|#...#|#..##|.##.#",
    "v": ".....|.....|#...#|#...#|#...#|.#.#.|..#..",
    "w": ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.",
    "x": ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",
    "y": ".....|.....|#...#|#...#|#...#|.####|....#|.###.",
    "z": ".....|.....|#####|...#.|..#..|.#...|#####",
    "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
    "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
    "2": ".###.|#...#|....#|...#.|..#..|.#...|#####",
    "3": "#####|...#.|..#..|...#.|....#|#...#|.###.",
    "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
    "5": "#####|#....|####.|....#|....#|#...#|.###.",
    "6": "..##.|.#...|#....|####.|#...#|#...#|.###.",
    "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
    "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
    "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
    "%": "##...|##..#|...#.|..#..|.#...|#..##|...##",
    "<": "...#.|..#..|.#...|#....|.#...|..#..|...#.",
    ":": ".....|.##..|.##..|.....|.##..|.##..|.....",
    ".": ".....|.....|.....|.....|.....|.##..|.##..",
    ",": ".....|.....|.....|.....|.##..|..#..|.#...",
    "-": ".....|.....|.....|#####|.....|.....|.....",
    "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
    ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
}
GLYPH_HEIGHT, GLYPH_WIDTH = 8, 5    # font pixels, descender row included


def _glyph(rows):
    """bool [GLYPH_HEIGHT, GLYPH_WIDTH] of a glyph's '|'-separated rows, blank rows added below."""
    pixels = [[pixel == "#" for pixel in row] for row in rows.split("|")]
    return np.array(pixels + [[False] * GLYPH_WIDTH] * (GLYPH_HEIGHT - len(pixels)))


GLYPHS = {char: _glyph(rows) for char, rows in _GLYPH_ROWS.items()}
TEXT_SCALE = 2                      # image pixels per font pixel
CELL_PIXELS = 40                    # side of a cell: room for "100" at TEXT_SCALE
MARGIN = 8                          # pixels around the picture
GAP = 6                             # pixels between a label and what it labels
BAR_WIDTH = 16                      # pixels, the colour bar
BACKGROUND, INK, FRAME = 1.0, 0.0, 0.5  # grey levels
TITLE = "confusion matrix: % of each true class (row)"
ROWS_TITLE, COLUMNS_TITLE = "true class", "predicted class"
BAR_LABELS = ("100%", "0%")         # the top and the bottom of the colour bar


def text_mask(text, scale=TEXT_SCALE):
    """The pixels of text in the bitmap font, left to right: bool [8 * scale,
    (6 * len(text) - 1) * scale] (no columns for ''), True where ink; characters one
    font pixel apart.
    Raises KeyError for a character the font lacks."""
    font_pixels = np.zeros([GLYPH_HEIGHT, max((GLYPH_WIDTH + 1) * len(text) - 1, 0)], bool)
    for index, char in enumerate(text):
        left = index * (GLYPH_WIDTH + 1)
        font_pixels[:, left:left + GLYPH_WIDTH] = GLYPHS[char]
    return np.kron(font_pixels, np.ones([scale, scale], bool))


def heat_colours(fractions):
    """Colours of fractions (float [...], 0 to 1): float32 [..., 3] RGB in [0, 1], black
    at 0, through red and yellow, to white at 1; the mean of the three channels equals
    the fraction, so a larger fraction is always brighter."""
    fractions = np.clip(np.asarray(fractions, np.float64), 0, 1)
    return np.stack([np.clip(3 * fractions - channel, 0, 1) for channel in range(3)], axis=-1).astype(np.float32)


def _text_width(text):
    return text_mask(text).shape[1]


@dataclasses.dataclass(frozen=True)
class HeatMapLayout:
    """Where each part of the picture goes, in pixels from the top left corner: the
    matrix's top left corner, the side of a cell, the whole picture's height and width."""
    classes: int
    label_width: int  # the longest class name, drawn
    matrix_top: int
    matrix_left: int
    cell: int
    height: int
    width: int

    @classmethod
    def for_names(cls, class_names):
        """The layout of a heat map whose rows and columns are headed by class_names."""
        text_height = GLYPH_HEIGHT * TEXT_SCALE
        label_width = max(_text_width(name) for name in class_names)
        matrix_side = len(class_names) * CELL_PIXELS
        matrix_top = MARGIN + text_height + 2 * GAP
        matrix_left = MARGIN + text_height + GAP + label_width + GAP
        height = matrix_top + matrix_side + GAP + label_width + GAP + text_height + MARGIN
        bar_labels_right = matrix_left + matrix_side + 2 * GAP + BAR_WIDTH + GAP + max(map(_text_width, BAR_LABELS))
        width = max(bar_labels_right, MARGIN + _text_width(TITLE)) + MARGIN
        return cls(len(class_names), label_width, matrix_top, matrix_left, CELL_PIXELS, height, width)

    @property
    def matrix_side(self):
        return self.classes * self.cell

    def cell_box(self, true_class, predicted_class):
        """(top, left, bottom, right) of a cell, bottom and right exclusive."""
        top = self.matrix_top + true_class * self.cell
        left = self.matrix_left + predicted_class * self.cell
        return top, left, top + self.cell, left + self.cell


def _draw(image, mask, top, left, colour):
    image[top:top + mask.shape[0], left:left + mask.shape[1]][mask] = colour


def cell_text(count, row_total):
    """What a cell says: its percentage of the row's examples, rounded ('<1' below 0.5%,
    '' for no examples at all, so that an empty cell stays visibly empty)."""
    if count == 0:
        return ""
    percent = 100 * count / row_total
    return "<1" if percent < 0.5 else str(int(percent + 0.5))  # halves up, unlike format()


def confusion_heat_map(confusion, class_names):
    """The confusion matrix int [C, C] (confusion[i, j]: examples of true class i
    predicted as j) as a picture, float32 [H, W, 3] RGB in [0, 1] (H and W from
    HeatMapLayout.for_names(class_names)): the class names on both axes, each cell
    coloured (heat_colours) and labelled with the percentage of its row's examples, a
    colour bar from 0% to 100%, and a title saying so."""
    confusion = np.asarray(confusion)
    layout = HeatMapLayout.for_names(class_names)
    image = np.full([layout.height, layout.width, 3], BACKGROUND, np.float32)
    text_height = GLYPH_HEIGHT * TEXT_SCALE
    _draw(image, text_mask(TITLE), MARGIN, (layout.width - _text_width(TITLE)) // 2, INK)

    row_totals = confusion.sum(axis=1)
    fractions = confusion / np.maximum(row_totals, 1)[:, None]
    side = layout.matrix_side
    matrix = image[layout.matrix_top:layout.matrix_top + side, layout.matrix_left:layout.matrix_left + side]
    matrix[...] = np.kron(heat_colours(fractions), np.ones([layout.cell, layout.cell, 1]))
    _frame(image, layout.matrix_top, layout.matrix_left, side, side)
    for i in range(layout.classes):
        for j in range(layout.classes):
            mask = text_mask(cell_text(confusion[i, j], row_totals[i]))
            top, left, _, _ = layout.cell_box(i, j)
            # Dark text on the bright half of the colour scale, light on the dark half.
            colour = INK if fractions[i, j] >= 0.5 else BACKGROUND
            _draw(image, mask, top + (layout.cell - mask.shape[0]) // 2, left + (layout.cell - mask.shape[1]) // 2,
                  colour)

    for index, name in enumerate(class_names):
        row_label = text_mask(name)
        top, left, _, _ = layout.cell_box(index, index)
        _draw(image, row_label, top + (layout.cell - text_height) // 2,
              layout.matrix_left - GAP - row_label.shape[1], INK)
        # Column labels read upwards, each ending just below the matrix.
        column_label = np.rot90(row_label)
        _draw(image, column_label, layout.matrix_top + side + GAP, left + (layout.cell - text_height) // 2, INK)
    rows_title = np.rot90(text_mask(ROWS_TITLE))
    _draw(image, rows_title, layout.matrix_top + (side - rows_title.shape[0]) // 2, MARGIN, INK)
    _draw(image, text_mask(COLUMNS_TITLE), layout.matrix_top + side + GAP + layout.label_width + GAP,
          layout.matrix_left + (side - _text_width(COLUMNS_TITLE)) // 2, INK)

    bar_left = layout.matrix_left + side + 2 * GAP
    levels = np.linspace(1, 0, side)  # top to bottom
    image[layout.matrix_top:layout.matrix_top + side, bar_left:bar_left + BAR_WIDTH] = heat_colours(levels)[:, None]
    _frame(image, layout.matrix_top, bar_left, side, BAR_WIDTH)
    top_label, bottom_label = map(text_mask, BAR_LABELS)
    _draw(image, top_label, layout.matrix_top, bar_left + BAR_WIDTH + GAP, INK)
    _draw(image, bottom_label, layout.matrix_top + side - text_height, bar_left + BAR_WIDTH + GAP, INK)
    return image


def _frame(image, top, left, height, width):
    """A one-pixel grey line just outside the box (top, left, height, width)."""
    image[top - 1, left - 1:left + width + 1] = FRAME
    image[top + height, left - 1:left + width + 1] = FRAME
    image[top - 1:top + height + 1, left - 1] = FRAME
    image[top - 1:top + height + 1, left + width] = FRAME
