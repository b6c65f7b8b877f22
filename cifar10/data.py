"""CIFAR-10 data: download and extract the binary archive, check it, read it with tf.data.

The binary version holds fixed-length records of 3,073 bytes: one label byte (0-9),
then the 32x32 red plane, the green plane and the blue plane, each row-major.
Training reads data_batch_1..5.bin (all but their last --validation_records records,
which are held out to validate on), evaluation test_batch.bin. Record counts always
come from the file sizes, so any number of records per file works, up to the official
10,000 a file when they come from an archive.

Images leave the reader as uint8 [32, 32, 3] and are decoded once, kept in memory as
uint8 and augmented a whole batch at a time in the graph: no Python runs per example.
"""
import errno
import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zlib

import numpy as np
import tensorflow as tf

from cifar10.config import DATA_URL
from cifar10.errors import Cifar10Error, check_writable_dir
# The shapes and class names, importable from here too (data.NUM_CLASSES, ...).
from cifar10.shapes import CLASS_NAMES, CROPPED_SIZE, DEPTH, IMAGE_SIZE, MAX_CROP_SHIFT, NUM_CLASSES  # noqa: F401

ARCHIVE_NAME = "cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
BATCHES_DIR = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
EVAL_SETS = {"test": (TEST_FILE,), "train_eval": TRAIN_FILES}  # --eval_data's names
# Everything the official archive holds besides the batches; nothing else is extracted.
OTHER_ARCHIVE_FILES = ("batches.meta.txt", "readme.html")
ARCHIVE_BYTES = 170_052_171          # the official archive's size
RECORDS_PER_FILE = 10_000            # records in each batch file of the official archive
MAX_OTHER_FILE_BYTES = 1 << 20       # bound on batches.meta.txt and readme.html (officially < 100 bytes)
# A full disk or quota: told apart from other I/O errors, because the fix is the user's.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)

LABEL_BYTES = 1
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * DEPTH
RECORD_BYTES = LABEL_BYTES + IMAGE_BYTES  # 3,073

MAX_FILE_BYTES = RECORDS_PER_FILE * RECORD_BYTES  # 30,730,000: bound on an extracted batch file
EXTRACTED_BYTES = (len(TRAIN_FILES) + 1) * MAX_FILE_BYTES

MAX_BRIGHTNESS_DELTA = 63.0          # pixel values, added to a whole image
CONTRAST_RANGE = (0.2, 1.8)          # factor applied around each channel's mean
DOWNLOAD_CHUNK_BYTES = 1 << 20


# ----------------------------------------------------------------------------------
# Download and extraction
# ----------------------------------------------------------------------------------

def maybe_download_and_extract(data_dir, url=DATA_URL, expected_md5=ARCHIVE_MD5):
    """Make sure data_dir/cifar-10-batches-bin/ exists; returns its path.

    An archive the user put into data_dir is extracted as it is. Otherwise the archive
    is downloaded from url to a temporary name, checked against expected_md5, renamed
    into place, then extracted. Raises Cifar10Error with what to do on any failure.
    """
    batches_dir = os.path.join(data_dir, BATCHES_DIR)
    if os.path.isdir(batches_dir):
        return batches_dir
    check_writable_dir(data_dir, "--data_dir")
    archive = os.path.join(data_dir, ARCHIVE_NAME)
    if not os.path.exists(archive):
        download(url, archive, expected_md5)
    extract(archive, data_dir)
    return batches_dir


def download(url, path, expected_md5):
    """Download url to path, printing progress; path appears only once complete and
    matching expected_md5 (hex). Raises Cifar10Error naming the URL on any failure; no
    partial file is left behind, also when a signal stops the program."""
    folder, name = os.path.split(path)
    hand_placed = (f"If this machine cannot reach it, download {ARCHIVE_NAME} elsewhere and "
                   f"put it in {folder or '.'}: it is then extracted without downloading.")
    try:
        request = urllib.request.Request(url)
    except ValueError as e:  # no scheme: urllib's "unknown url type"
        raise Cifar10Error(f"--data_url={url} is not a URL: pass one that starts with https://, http:// or "
                           f"file://. {hand_placed}") from e
    fd, partial = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0)
            md5 = hashlib.md5()
            received = 0
            while chunk := response.read(DOWNLOAD_CHUNK_BYTES):
                out.write(chunk)
                md5.update(chunk)
                received += len(chunk)
                if total:
                    sys.stdout.write(f"\r>> Downloading {name} {100.0 * received / total:.1f}%")
                    sys.stdout.flush()
        sys.stdout.write("\n")
        if total and received != total:
            raise Cifar10Error(f"The download of {url} stopped after {received} of {total} bytes. "
                               f"Run again to retry. {hand_placed}")
        if md5.hexdigest() != expected_md5:
            raise Cifar10Error(f"The file downloaded from {url} has MD5 {md5.hexdigest()}, not the "
                               f"expected {expected_md5}: it was removed. Run again to retry; if it "
                               f"persists, the server or a proxy is serving a different file. {hand_placed}")
        os.replace(partial, path)
        print(f"Successfully downloaded {name} {received} bytes.")
    except (OSError, http.client.HTTPException) as e:  # URLError is an OSError
        if getattr(e, "errno", None) in DISK_FULL_ERRNOS:
            raise disk_full_error(folder, f"download {url}", e) from e
        reason = getattr(e, "reason", None) or e.strerror or e
        raise Cifar10Error(f"Could not download {url}: {reason}. {hand_placed}") from e
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def disk_full_error(folder, what, error):
    """The Cifar10Error for an OSError from DISK_FULL_ERRNOS while doing what in folder."""
    return Cifar10Error(f"Could not {what}: {error.strerror} in {folder or '.'}; no partial file was left "
                        f"behind. The data needs about {(ARCHIVE_BYTES + EXTRACTED_BYTES) / 1e6:.0f} MB there (the "
                        f"archive and the extracted files): free some space, or pass another --data_dir.")


def member_limit(name):
    """The most bytes archive member name (one the official archive holds) may have."""
    return MAX_OTHER_FILE_BYTES if os.path.basename(name) in OTHER_ARCHIVE_FILES else MAX_FILE_BYTES


def extract(archive, data_dir):
    """Extract the CIFAR-10 members of archive into data_dir/cifar-10-batches-bin/.

    Only the official member names are accepted (no other paths, links or devices), each
    at most the size it has in the official layout, and the whole gzip stream is read, so
    that its CRC-32 catches damaged bytes. The folder appears under its final name only
    when complete and checked, with the mode the umask gives a new folder.
    """
    allowed = {f"{BATCHES_DIR}/{f}" for f in TRAIN_FILES + (TEST_FILE,) + OTHER_ARCHIVE_FILES}
    required = {f"{BATCHES_DIR}/{f}" for f in TRAIN_FILES + (TEST_FILE,)}
    fix = (f"Delete {archive} and run again to download it, or put a complete copy of the "
           f"official {ARCHIVE_NAME} there.")
    staging = None
    try:
        staging = tempfile.mkdtemp(dir=data_dir, prefix=".extract-")
        # Extracted one level down: mkdtemp's folder is private (0700), os.mkdir's gets the
        # umask's mode, so that other users of a shared --data_dir can read it.
        extracted = os.path.join(staging, BATCHES_DIR)
        os.mkdir(extracted)
        found = set()
        # Streamed through GzipFile, which checks the CRC-32 and length at the end of the
        # stream; tarfile alone stops reading at the end-of-archive block, before them.
        with gzip.open(archive, "rb") as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    name = member.name.rstrip("/")
                    if member.isdir() and name == BATCHES_DIR:
                        continue
                    if name not in allowed or not member.isfile():
                        raise Cifar10Error(f"{archive} holds {member.name!r}, which is not part of the "
                                           f"CIFAR-10 binary archive; nothing was extracted. {fix}")
                    # tarfile reads a member's data up to member.size and no further, so
                    # checking the header's size bounds what is written.
                    if member.size > member_limit(name):
                        raise Cifar10Error(f"{archive} holds {name} of {member.size:,} bytes, more than the "
                                           f"{member_limit(name):,} it has in the official archive; nothing "
                                           f"was extracted. {fix}")
                    with tar.extractfile(member) as src, open(os.path.join(extracted, os.path.basename(name)),
                                                              "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    found.add(name)
            while stream.read(DOWNLOAD_CHUNK_BYTES):  # to the end, where the CRC is checked
                pass
        missing = sorted(required - found)
        if missing:
            raise Cifar10Error(f"{archive} lacks {', '.join(missing)}: it is not the CIFAR-10 binary "
                               f"archive. {fix}")
        target = os.path.join(data_dir, BATCHES_DIR)
        try:
            os.rename(extracted, target)
        except OSError:
            if not os.path.isdir(target):  # else another process extracted it first
                raise
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise Cifar10Error(f"{archive} is not a valid gzip tar archive ({e}): it is damaged or a partial "
                           f"download, and nothing was extracted. {fix}") from e
    except OSError as e:
        if e.errno not in DISK_FULL_ERRNOS:
            raise
        raise disk_full_error(data_dir, f"extract {archive}", e) from e
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------------
# Files and their checks
# ----------------------------------------------------------------------------------

def data_files(data_dir, eval_data=None):
    """Paths of the batch files: the training files when eval_data is None, else those
    of the evaluation set eval_data names (see eval_set_names)."""
    names = TRAIN_FILES if eval_data is None else eval_set_names(eval_data)
    return [os.path.join(data_dir, BATCHES_DIR, name) for name in names]


def eval_set_names(eval_data):
    """The batch file names of an evaluation set: 'test' or True, test_batch.bin;
    'train_eval' or False, the training files (True and False as the original tutorial's
    inputs()). Raises Cifar10Error for anything else, rather than guess."""
    if isinstance(eval_data, (bool, np.bool_)):  # before the names: 1 == True in Python
        return (TEST_FILE,) if eval_data else TRAIN_FILES
    if isinstance(eval_data, str) and eval_data in EVAL_SETS:
        return EVAL_SETS[eval_data]
    raise Cifar10Error(f"eval_data={eval_data!r} names no CIFAR-10 set: pass 'test' or True for {TEST_FILE}, "
                       f"'train_eval' or False for the training files ({TRAIN_FILES[0]} to {TRAIN_FILES[-1]}).")


def count_records(filenames):
    """Check each CIFAR-10 batch file and return the total number of records.

    Reads only the label bytes (memory-mapped), so a check of the 50,000 training
    records takes a fraction of a second. Raises Cifar10Error naming the file for a
    missing or empty file, a size that is not whole records, or a label outside 0-9.
    """
    total = 0
    for path in filenames:
        fix = (f"Delete {os.path.dirname(path)} to extract it again from {ARCHIVE_NAME} "
               "(or download it again), or put the right file back.")
        if not os.path.isfile(path):
            raise Cifar10Error(f"{path} is missing. The CIFAR-10 binary data holds "
                               f"{', '.join(TRAIN_FILES)} and {TEST_FILE}. {fix}")
        size = os.path.getsize(path)
        if size == 0:
            raise Cifar10Error(f"{path} is empty. {fix}")
        if size % RECORD_BYTES:
            raise Cifar10Error(f"{path} holds {size} bytes, not a whole number of {RECORD_BYTES}-byte "
                               f"records (1 label byte and {IMAGE_BYTES} pixel bytes): it is truncated "
                               f"or not a CIFAR-10 binary batch. {fix}")
        labels = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, RECORD_BYTES)[:, 0]
        bad = np.flatnonzero(labels >= NUM_CLASSES)
        if bad.size:
            raise Cifar10Error(f"{path}: record {bad[0]} (of {labels.size}) has label {labels[bad[0]]}, "
                               f"and {bad.size} records in all have labels outside 0-{NUM_CLASSES - 1}. "
                               f"The file is damaged or is not a CIFAR-10 binary batch. {fix}")
        total += labels.size
    return total


# ----------------------------------------------------------------------------------
# Reading and preprocessing
# ----------------------------------------------------------------------------------

def read_records(filenames, first=0, count=-1):
    """Dataset of (image uint8 [32, 32, 3] in RGB, label int32 []) in file order: count
    records (-1: all the rest) from record number first (0-based, across the files) on.
    Records before first are read but not decoded."""
    def decode(record):
        record = tf.io.decode_raw(record, tf.uint8)
        label = tf.cast(record[0], tf.int32)
        planes = tf.reshape(record[LABEL_BYTES:], [DEPTH, IMAGE_SIZE, IMAGE_SIZE])
        # Stacking the planes is tf.transpose(planes, [1, 2, 0]), which with oneDNN on
        # (cifar10.startup) and no AVX-512 logs an error as it falls back for uint8.
        return tf.stack(tf.unstack(planes), axis=-1), label
    records = tf.data.FixedLengthRecordDataset(filenames, RECORD_BYTES).skip(first).take(count)
    return records.map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def records_in(filenames):
    """The number of whole records in filenames, from their sizes (unchecked: see count_records)."""
    return sum(os.path.getsize(f) for f in filenames) // RECORD_BYTES


def training_records(filenames, validation_records=0):
    """Check the training files (see count_records) and return how many records training
    reads: all but the last validation_records, which are held out for validation.
    Raises Cifar10Error, naming --validation_records, when that would leave none."""
    total = count_records(filenames)
    if validation_records >= total:
        raise Cifar10Error(f"--validation_records={validation_records}, but the training files hold {total} "
                           f"records in all ({', '.join(filenames)}): hold out fewer than {total}, so that some "
                           "are left to train on.")
    return total - validation_records


def distort_images(images, cutout=0, seed=None, random_contrast=True, crop_shift=MAX_CROP_SHIFT):
    """Training augmentation of a batch: uint8 [B, 32, 32, 3] -> float32 [B, 24, 24, 3].

    Per image: a random 24x24 crop, a random left-right flip, a random brightness shift
    in [-63, 63), a random contrast factor in [0.2, 1.8), then per-image
    standardization (zero mean, unit variance), as the original tutorial. As there, the
    standardization undoes the brightness shift, a constant added to the whole image
    that the mean takes away (to float32 rounding, tests/test_data.py); kept to be the
    tutorial's pipeline, it changes nothing the network sees. The crop lies at most
    crop_shift pixels from the central crop, across and down (the tutorial's 4: any
    crop; 0: the central one). random_contrast False leaves the contrast out. Either
    leaves every other draw as it was for the same seed. With cutout > 0, a cutout x
    cutout square at a random centre (clipped at the borders) is then set to 0, the
    image's mean (DeVries and Taylor, 2017).

    seed: int [2], from which every random number of the batch is drawn (the same seed,
    the same augmentation); None, a random one.
    """
    batch = tf.shape(images)[0]
    if seed is None:
        seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
    # Stateless draws: a parallel map runs them in any order, and still deterministically.
    corners_seed, flip_seed, brightness_seed, contrast_seed, cutout_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=5))
    corners = MAX_CROP_SHIFT - crop_shift + tf.random.stateless_uniform(
        [batch, 2], corners_seed, 0, 2 * crop_shift + 1, dtype=tf.int32)
    rows = corners[:, :1] + tf.range(CROPPED_SIZE)
    cols = corners[:, 1:] + tf.range(CROPPED_SIZE)
    images = tf.gather(images, rows, axis=1, batch_dims=1)
    images = tf.gather(images, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform([batch, 1, 1, 1], flip_seed) < 0.5
    images = tf.cast(tf.where(flip, tf.reverse(images, axis=[2]), images), tf.float32)
    images += tf.random.stateless_uniform([batch, 1, 1, 1], brightness_seed, -MAX_BRIGHTNESS_DELTA,
                                          MAX_BRIGHTNESS_DELTA)
    if random_contrast:
        channel_means = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        contrast = tf.random.stateless_uniform([batch, 1, 1, 1], contrast_seed, *CONTRAST_RANGE)
        images = (images - channel_means) * contrast + channel_means
    images = tf.image.per_image_standardization(images)
    if cutout:
        starts = tf.random.stateless_uniform([batch, 2], cutout_seed, 0, CROPPED_SIZE, dtype=tf.int32) - cutout // 2
        positions = tf.range(CROPPED_SIZE)
        rows = (positions >= starts[:, :1]) & (positions < starts[:, :1] + cutout)  # [B, 24]
        cols = (positions >= starts[:, 1:]) & (positions < starts[:, 1:] + cutout)
        square = rows[:, :, None, None] & cols[:, None, :, None]                    # [B, 24, 24, 1]
        images = tf.where(square, 0.0, images)
    return images


def mix_batch(images, targets, alpha, seed):
    """Mixup (Zhang et al., 2018) of an augmented batch: float32 images [B, 24, 24, 3] and
    float32 targets [B, 10] -> (lam * images + (1 - lam) * the batch in reverse order,
    the targets mixed alike), with one lam ~ Beta(alpha, alpha) for the whole batch,
    drawn from seed (int [2]). The batch is shuffled already, so the image at the mirror
    position is a random partner."""
    first, second = (tf.random.stateless_gamma([], s, alpha) for s in tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)))
    lam = tf.math.divide_no_nan(first, first + second)  # both draws can underflow to 0 for a small alpha
    return (lam * images + (1.0 - lam) * tf.reverse(images, axis=[0]),
            lam * targets + (1.0 - lam) * tf.reverse(targets, axis=[0]))


def crop_and_standardize(images):
    """Evaluation preprocessing of a batch: uint8 [B, 32, 32, 3] -> float32 [B, 24, 24, 3],
    the central 24x24 crop, per-image standardized."""
    return evaluation_views(images, 1)[:, 0]


def training_dataset(filenames, batch_size, input_context=None, cutout=0, validation_records=0, seed=None,
                     mixup=0.0, teacher=None, distillation=0.0, random_contrast=True, crop_shift=MAX_CROP_SHIFT):
    """Endless shuffled, augmented batches from checked files: (float32 [B, 24, 24, 3],
    int32 labels [B]), with distort_images's cutout, random_contrast and crop_shift.
    With a teacher (float32 [records read, 10], a row for each record in file order:
    distillation.teacher_probabilities), the labels become float32 targets [B, 10]:
    (1 - distillation) x the label's one-hot vector + distillation x the record's row.
    With mixup (alpha) > 0, mixed by mix_batch into (images, float32 targets [B, 10]).
    The last validation_records records of the files (in file order) are held out:
    never read (see validation_dataset). With an input_context (tf.distribute), reads
    this pipeline's shard of the others.

    seed: None for another order and augmentation each time; or a sequence of ints 0 or
    more (the trainer's: --seed, and the step it starts at), the same sequence giving the
    same batches under the same TensorFlow global seed (tf.random.set_seed), which
    tf.data pairs with the shuffle's. Each input pipeline derives seeds of its own from
    seed and its id.
    """
    kept = records_in(filenames) - validation_records
    records = read_records(filenames, count=kept)  # held out before sharding: no shard sees them
    if teacher is not None:  # each record's number in file order, before sharding: its teacher's row
        records = tf.data.Dataset.zip(records, tf.data.Dataset.range(kept)).map(
            lambda image_and_label, number: (*image_and_label, number))
    if input_context is not None and input_context.num_input_pipelines > 1:
        records = records.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    shuffle_seed = augmentation_seed = None
    if seed is not None:
        pipeline = input_context.input_pipeline_id if input_context is not None else 0
        shuffle_seed, augmentation_seed = (int(s) for s in np.random.SeedSequence([*seed, pipeline]).generate_state(2))
    # Decoded uint8 images stay in memory after the first epoch (about 150 MB for 50,000),
    # and the shuffle buffer spans the whole epoch, well above the original's 40%.
    batches = (records.cache()
               .shuffle(kept, seed=shuffle_seed, reshuffle_each_iteration=True)
               .repeat()
               .batch(batch_size, drop_remainder=True))
    batch_seeds = tf.data.Dataset.random(seed=augmentation_seed).batch(2)  # int64 [2] for each batch

    def augment(batch, batch_seed):
        images, labels = distort_images(batch[0], cutout, batch_seed, random_contrast, crop_shift), batch[1]
        if teacher is not None:
            labels = ((1.0 - distillation) * tf.one_hot(labels, NUM_CLASSES)
                      + distillation * tf.gather(teacher, batch[2]))
        if not mixup:
            return images, labels
        if labels.dtype.is_integer:
            labels = tf.one_hot(labels, NUM_CLASSES)
        return mix_batch(images, labels, mixup, tf.random.experimental.stateless_fold_in(batch_seed, 1))

    return (tf.data.Dataset.zip(batches, batch_seeds)
            .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def evaluation_views(images, views):
    """The views of a batch that evaluation averages its predictions over: uint8
    [B, 32, 32, 3] -> float32 [B, views, 24, 24, 3], each per-image standardized. views
    (one of config.EVAL_VIEW_COUNTS, which EvalConfig checks): 1, the central crop; 2, it
    and its mirror image; 10, the central and the four corner crops, and the mirror image
    of each."""
    margin, far = MAX_CROP_SHIFT, IMAGE_SIZE - CROPPED_SIZE
    corners = [(margin, margin)] + ([(0, 0), (0, far), (far, 0), (far, far)] if views == 10 else [])
    crops = [images[:, row:row + CROPPED_SIZE, col:col + CROPPED_SIZE, :] for row, col in corners]
    if views > 1:
        crops = [view for crop in crops for view in (crop, tf.reverse(crop, axis=[2]))]
    return tf.image.per_image_standardization(tf.cast(tf.stack(crops, axis=1), tf.float32))


def evaluation_dataset(filenames, batch_size, num_examples, views=1, first=0):
    """num_examples records of checked files from record number first (0: the first)
    on, each once, in file order, in batches of batch_size (the last one smaller):
    (float32 [B, 24, 24, 3], int32 [B]), or with views > 1 (see evaluation_views),
    (float32 [B, views, 24, 24, 3], int32 [B])."""
    def preprocess(images, labels):
        if views == 1:
            return crop_and_standardize(images), labels
        return evaluation_views(images, views), labels
    return (read_records(filenames, first, num_examples)
            .batch(batch_size)
            .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def validation_dataset(filenames, batch_size, validation_records):
    """The records that training_dataset holds out, the last validation_records of checked
    files, each once, in file order, read as evaluation_dataset reads a test set (the
    central crop), in batches of batch_size (the last one smaller): (float32
    [B, 24, 24, 3], int32 [B])."""
    return evaluation_dataset(filenames, batch_size, validation_records,
                              first=records_in(filenames) - validation_records)


def distorted_inputs(data_dir, batch_size):
    """The original cifar10_input.distorted_inputs, same signature and augmentation:
    endless augmented batches from data_dir's training files, after checking them. Returns
    a tf.data.Dataset of (float32 [B, 24, 24, 3], int32 [B]) where the original returned
    the two tensors of a queue."""
    filenames = data_files(data_dir)
    count_records(filenames)
    return training_dataset(filenames, batch_size)


def inputs(eval_data, data_dir, batch_size):
    """The original cifar10_input.inputs, same signature and preprocessing: every record of
    the set eval_data names ('test' or True, test_batch.bin; 'train_eval' or False, the
    training files) once, centrally cropped. Returns a tf.data.Dataset of (float32
    [B, 24, 24, 3], int32 [B]) where the original returned the two tensors of a queue; the
    last batch may be smaller. Raises Cifar10Error for any other eval_data, None included."""
    filenames = [os.path.join(data_dir, BATCHES_DIR, name) for name in eval_set_names(eval_data)]
    return evaluation_dataset(filenames, batch_size, count_records(filenames))
