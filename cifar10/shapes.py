"""What the reader produces and the network consumes: the CIFAR-10 image and label shapes
and the class names. A module of its own, so that the model does not import the
download and archive code of cifar10.data for them (data re-exports them all)."""

IMAGE_SIZE = 32          # pixels, height and width of a stored image
CROPPED_SIZE = 24        # pixels, height and width of what the model sees
# Pixels from the central crop to a corner crop, across and down: the central crop's margin.
MAX_CROP_SHIFT = (IMAGE_SIZE - CROPPED_SIZE) // 2
DEPTH = 3                # colour channels
NUM_CLASSES = 10
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
