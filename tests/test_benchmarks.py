"""The benchmark scripts keep the project's rules: they never delete what they did not write,
and leave no scratch files behind; recipe_curve's data, --seeds and picture."""
import dataclasses
import os
import re
import struct
import subprocess
import sys
import tarfile

import numpy as np

from benchmarks import recipe_curve
from cifar10 import data, trainer
from conftest import REPO, write_stripe_data


def test_recipe_curve_refuses_a_folder_that_is_not_empty(stripe_data, tmp_path):
    train_dir = tmp_path / "someone's run"
    train_dir.mkdir()
    (train_dir / "model.ckpt-100.index").write_bytes(b"precious")
    result = subprocess.run([sys.executable, "-m", "benchmarks.recipe_curve", f"--data_dir={stripe_data}",
                             f"--train_dir={train_dir}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"error: --train_dir={train_dir} is not empty" in result.stderr and "Traceback" not in result.stderr
    assert [p.name for p in train_dir.iterdir()] == ["model.ckpt-100.index"]
    assert (train_dir / "model.ckpt-100.index").read_bytes() == b"precious"


def test_recipe_curve_extracts_the_archive_in_data_dir_as_the_trainer_does(tmp_path):
    stripes = write_stripe_data(tmp_path / "stripes", test_records=50)
    data_dir = tmp_path / "data"  # holds the archive alone, as after a manual download
    data_dir.mkdir()
    with tarfile.open(data_dir / data.ARCHIVE_NAME, "w:gz") as archive:
        archive.add(os.path.join(stripes, data.BATCHES_DIR), arcname=data.BATCHES_DIR)
    result = subprocess.run([sys.executable, "-m", "benchmarks.recipe_curve", f"--data_dir={data_dir}",
                             f"--train_dir={tmp_path / 'curve'}", "--recipe=tutorial", "--max_steps=10",
                             "--save_checkpoint_steps=10", "--save_summaries_steps=0", "--batch_size=32"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(os.listdir(data_dir)) == [data.BATCHES_DIR, data.ARCHIVE_NAME]
    np.testing.assert_array_equal(tsv_rows(result.stdout.splitlines(), 5)[:, 1], [10])


def test_recipe_curve_names_a_damaged_archive_in_one_paragraph_and_trains_nothing(tmp_path):
    (tmp_path / data.ARCHIVE_NAME).write_bytes(b"not a gzip stream")
    train_dir = tmp_path / "curve"
    result = subprocess.run([sys.executable, "-m", "benchmarks.recipe_curve", f"--data_dir={tmp_path}",
                             f"--train_dir={train_dir}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"error: {tmp_path / data.ARCHIVE_NAME} is not a valid gzip tar archive" in result.stderr
    assert "Traceback" not in result.stderr and not train_dir.exists()


def tsv_rows(lines, fields):
    """The lines of lines (str) that are `fields` tab-separated numbers, as float [N, fields]."""
    rows = [line.split("\t") for line in lines]
    return np.array([[float(value) for value in row] for row in rows
                     if len(row) == fields and all(re.fullmatch(r"[\d.]+", value) for value in row)])


def png_size(path):
    """(width, height) of a PNG file; asserts its signature and header chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", head
    return struct.unpack(">II", head[16:24])


def test_recipe_curve_with_seeds_prints_the_mean_and_sample_sd_of_each_step_and_draws_a_png(tmp_path):
    data_dir = write_stripe_data(tmp_path / "data", test_records=50)  # evaluated 8 times: keep it small
    train_dir = tmp_path / "curve"
    result = subprocess.run([sys.executable, "-m", "benchmarks.recipe_curve", f"--data_dir={data_dir}",
                             f"--train_dir={train_dir}", "--recipe=tutorial", "--seeds=2", "--max_steps=20",
                             "--save_checkpoint_steps=10", "--save_summaries_steps=0", "--batch_size=32"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()

    # Run k trained with --seed=k in its own folder, and printed its own curve.
    starts = [i for i, line in enumerate(out) if "cifar10_train.py" in line]
    commands = [out[i] for i in starts]
    assert [re.findall(r"--seed=(\d+)", c) for c in commands] == [["0"], ["1"]]
    assert [re.search(r"--train_dir=(\S+)", c)[1] for c in commands] == [str(train_dir / "seed_0"),
                                                                         str(train_dir / "seed_1")]
    header = out.index("\t".join(recipe_curve.MEAN_COLUMNS))
    seed_0, seed_1 = tsv_rows(out[starts[0]:starts[1]], 5), tsv_rows(out[starts[1]:header], 5)
    means = tsv_rows(out[header + 1:], 7)
    # Points matched by step: the steps both runs saved (10, and 20 at the end).
    np.testing.assert_array_equal(seed_0[:, 1], [10, 20])
    np.testing.assert_array_equal(seed_1[:, 1], [10, 20])
    np.testing.assert_array_equal(means[:, 1], [10, 20])
    for column, precision in ((3, 3), (5, 4)):  # central crop, 10 views
        both = np.stack([seed_0[:, precision], seed_1[:, precision]])
        np.testing.assert_allclose(means[:, column], both.mean(axis=0), atol=1e-4)
        # The sample sd (n - 1): for two values, their distance over the square root of 2.
        np.testing.assert_allclose(means[:, column + 1], np.abs(both[0] - both[1]) / np.sqrt(2), atol=1e-4)
    assert np.all((means[:, 3:] >= 0) & (means[:, 3:] <= 1))
    assert (train_dir / "curve.tsv").read_text().splitlines()[0] == "\t".join(recipe_curve.MEAN_COLUMNS)

    for png in (train_dir / "curve.png", train_dir / "seed_0" / "curve.png", train_dir / "seed_1" / "curve.png"):
        assert png_size(png) == tuple(round(inches * recipe_curve.FIGURE_DPI)
                                      for inches in recipe_curve.FIGURE_INCHES)
        assert 10_000 < png.stat().st_size < 100_000  # drawn, and small enough for a README


def test_recipe_curve_with_seeds_needs_checkpoints_at_the_same_steps_and_the_trainers_seed_flag(tmp_path,
                                                                                              monkeypatch):
    def refusal(*flags):
        args, trainer_flags = recipe_curve.parser().parse_known_args(
            ["--data_dir=unused", f"--train_dir={tmp_path / 'new'}", *flags])
        return recipe_curve.refusal(args, trainer_flags)

    assert refusal() is None and refusal("--seeds=2", "--save_checkpoint_steps=100") is None
    assert refusal("--seeds=0").startswith("--seeds=0: it must be at least 1")
    assert refusal("--seeds=2").startswith("--seeds=2 matches the runs' points by step")
    assert "pass --save_checkpoint_steps=N" in refusal("--seeds=2")
    assert "leave --seed out" in refusal("--seeds=2", "--save_checkpoint_steps=100", "--seed=7")
    assert refusal("--seed=7") is None  # one run: the flag goes to the trainer

    @dataclasses.dataclass(frozen=True)
    class TrainConfigWithoutSeed:
        max_steps: int = 1

    monkeypatch.setattr(recipe_curve, "TrainConfig", TrainConfigWithoutSeed)
    assert "this version of the trainer has no --seed flag" in refusal("--seeds=2", "--save_checkpoint_steps=100")
    assert refusal() is None


def test_gpu_check_runs_every_part_on_a_cpu_prints_one_table_and_the_benchmark_leaves_no_scratch_files(
        stripe_data, tmp_path):
    temporary = tmp_path / "tmp"  # the temporary folder of the check and the programs it runs
    temporary.mkdir()
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", stripe_data], cwd=REPO, capture_output=True,
                            text=True, timeout=900, env={**os.environ, "TMPDIR": str(temporary)})
    assert result.returncode == 0, result.stdout + result.stderr
    # The check keeps its logs and runs where it says; the benchmark removed what it wrote.
    work = re.search(r"; logs in (\S+)", result.stdout)[1]
    assert os.path.dirname(work) == str(temporary) and os.path.isfile(os.path.join(work, "benchmark.log"))
    assert not [path.name for path in temporary.iterdir() if path.name.startswith("cifar10_benchmark")]
    table = result.stdout[result.stdout.index("benchmarks/gpu_check.sh CPU dry run"):].splitlines()
    assert table[1].startswith("| check ") and table[2].startswith("|---")
    rows = [[cell.strip() for cell in line.split("|")[1:3]] for line in table[3:]]
    # The rows name the precision this CPU computes in by default: float32, or bfloat16
    # where it has AMX or AVX512-BF16; the check times float32, "(default)" where it is.
    default = trainer.compute_dtype(None).name
    float32_label = "float32 (default)" if default == "float32" else "float32"
    trainer_row = f"training: the trainer as run by cifar10_train.py, {float32_label}"
    fast_row = f"--recipe=fast, 20 steps ({default} compute), test_batch.bin"
    assert [check for check, _ in rows] == [
        "the data, checked (cifar10_input.py)", "tests that need a GPU (pytest -m gpu)",
        f"training: our compiled step alone, {float32_label}", trainer_row,
        "input pipeline alone", "evaluation, 200 images", "(the benchmark's whole run)",
        "2 towers on 2 logical devices of one, 20 steps", fast_row]
    results = dict(rows)
    assert results["tests that need a GPU (pytest -m gpu)"] == "skipped: no GPU"
    assert re.fullmatch(r"[\d.]+ examples/sec; [\d.]+ of the bare step", results[trainer_row])
    assert re.fullmatch(r"\d+ examples/sec \(2 x batch 8\); 1 tower: \d+ examples/sec",
                        results["2 towers on 2 logical devices of one, 20 steps"])
    assert re.fullmatch(r"precision @ 1 = [\d.]+ \(accuracy: \d+/200 at step 20\); training \d+ examples/sec",
                        results[fast_row])
