"""Precision @ 1 against wall-clock minutes for a training recipe: the README's curves.

    python -m benchmarks.recipe_curve --data_dir=/tmp/cifar10_data --recipe=fast
    python -m benchmarks.recipe_curve --data_dir=/tmp/cifar10_data --recipe=fast --seeds=3 \\
        --save_checkpoint_steps=3125

Extracts the data into --data_dir first if it is not there yet, as the trainer does
(downloading the archive unless --data_dir holds it). Then runs cifar10_train.py (in
--train_dir, which must be new or empty) as it is, copies each checkpoint it writes
(every --save_checkpoint_secs and/or --save_checkpoint_steps) aside, and when training
ends evaluates every copy on test_batch.bin, so that the evaluations take nothing from
the training run. Prints, and writes to <train_dir>/curve.tsv, minutes since the trainer
started, step, epoch and precision @ 1 of the central crop (cifar10_eval.py's default)
and of 10 views (--views=10), and draws both against minutes in <train_dir>/curve.png.
Extra flags go to cifar10_train.py.

--seeds=N (N > 1) trains N runs one after the other, run k (0 to N - 1) with --seed=k in
<train_dir>/seed_<k>, each evaluated when it ends and with its own curve.tsv and
curve.png there. Then, for each step at which every run saved a checkpoint, it prints
and writes to <train_dir>/curve.tsv the mean minutes and the mean and sample standard
deviation (n - 1 in the denominator) of each precision over the runs; <train_dir>/curve.png
shows the means with a band of ± 1 sd. Points are matched by step, not by time: a step
is the same point of the schedule and the same number of examples seen in every run,
whereas the minutes it takes vary from run to run. So that the runs save at the same
steps, --seeds > 1 needs --save_checkpoint_steps (checkpoints saved by time count only
in each run's own curve).
"""
import argparse
import dataclasses
import glob
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cifar10 import checkpoints, data, evaluator  # noqa: E402
from cifar10.config import TrainConfig  # noqa: E402
from cifar10.errors import Cifar10Error  # noqa: E402
from cifar10.model import Cifar10Model  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLL_SECS = 2.0
EVALUATED_VIEWS = (1, 10)  # the central crop, and cuda-convnet's 10-view test
RUN_COLUMNS = ("minutes", "step", "epoch", "precision_at_1", "precision_at_1_10_views")
MEAN_COLUMNS = ("minutes", "step", "epoch", "precision_at_1_mean", "precision_at_1_sd",
                "precision_at_1_10_views_mean", "precision_at_1_10_views_sd")
FIGURE_INCHES, FIGURE_DPI = (8, 5.4), 100  # an 800x540 PNG of about 50 KB
CAPTION_CHARACTERS = 110  # a line of the caption (the command) at the figure's width
CAPTION_LINE_HEIGHT = 0.025  # of the figure's height, at the caption's 7 points


def snapshot_new_checkpoints(run_dir, keep_dir, started, copied):
    """Copy each complete checkpoint of run_dir not yet in copied ({path: (copy's path,
    minutes since started)}; started: the trainer's start, a time.time()) into keep_dir
    and add it to copied."""
    for path in checkpoints.listed(run_dir, no_newer_than_state=True):
        if path in copied:
            continue
        try:
            minutes = (os.path.getmtime(path + ".index") - started) / 60
            for file in [path + ".index", *glob.glob(path + ".data-*")]:
                shutil.copy(file, keep_dir)
        except FileNotFoundError:  # pruned by the trainer's retention before we came
            continue
        copied[path] = (os.path.join(keep_dir, os.path.basename(path)), minutes)


def train_and_keep_checkpoints(command, run_dir):
    """Run the trainer command (writing to run_dir, new or empty), copying its
    checkpoints aside as they appear; returns (copies as (path, minutes since the
    trainer started), ascending; the run's steps per epoch). Exits if training fails."""
    keep_dir = os.path.join(run_dir, "curve_checkpoints")
    os.makedirs(keep_dir)
    print(" ".join(command), flush=True)
    started = time.time()
    with open(os.path.join(run_dir, "train.log"), "w") as log:
        trainer = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        copied = {}
        while trainer.poll() is None:
            snapshot_new_checkpoints(run_dir, keep_dir, started, copied)
            time.sleep(POLL_SECS)
        snapshot_new_checkpoints(run_dir, keep_dir, started, copied)
    if trainer.returncode:
        sys.exit(f"cifar10_train.py failed; see {log.name}")
    header = re.search(r"([\d.]+) steps an epoch", open(log.name).read())
    return sorted(copied.values(), key=lambda item: item[1]), float(header.group(1))


def evaluate_run(copies, steps_per_epoch, datasets, model, predict):
    """Evaluate each (checkpoint, minutes) of copies with each of datasets (one per
    EVALUATED_VIEWS), printing a line each; returns the rows, float [checkpoints, 5]
    (RUN_COLUMNS: minutes, step, epoch, then each precision @ 1 as a fraction)."""
    rows = []
    for path, minutes in copies:
        results = [evaluator.evaluate_checkpoint(path, dataset, model, predict) for dataset in datasets]
        step = results[0].step
        rows.append([minutes, step, step / steps_per_epoch, *(result.precision for result in results)])
        print(format_row(rows[-1]), flush=True)
    return np.array(rows).reshape(-1, len(RUN_COLUMNS))


def format_row(row):
    """A row of a curve (minutes, step, epoch, then precisions or their sds as fractions)
    as a TSV line."""
    minutes, step, epoch, *fractions = row
    return "\t".join([f"{minutes:.1f}", f"{step:.0f}", f"{epoch:.1f}", *(f"{f:.4f}" for f in fractions)])


def mean_over_runs(runs):
    """For each step that every run (float [points, 5] in RUN_COLUMNS, one per run, at
    least 2) has, ascending: mean minutes, step, epoch, then for each precision its mean
    and its sample standard deviation (ddof 1): float [common steps, 7] (MEAN_COLUMNS)."""
    common = sorted(set.intersection(*(set(run[:, 1]) for run in runs)))
    at_step = np.array([[run[run[:, 1] == step][0] for step in common] for run in runs])  # [runs, steps, 5]
    means, sds = at_step.mean(axis=0), at_step.std(axis=0, ddof=1)
    return np.concatenate([means[:, :3], np.stack([means[:, 3], sds[:, 3], means[:, 4], sds[:, 4]], axis=1)],
                          axis=1).reshape(-1, len(MEAN_COLUMNS))


def write_tsv(path, columns, rows):
    """Write a header of columns and a line per row (format_row) to path."""
    with open(path, "w") as out:
        out.write("\n".join(["\t".join(columns), *map(format_row, rows)]) + "\n")


def plot_curve(path, minutes, precisions, sds, title, caption):
    """Draw precision @ 1 (percent) against minutes into the PNG path: minutes float [P];
    precisions and sds float [2, P] as fractions, central crop then 10 views (sds None
    for a single run, else a band of ± 1 sd around each line); title above, caption
    (the command) below."""
    figure = Figure(figsize=FIGURE_INCHES, dpi=FIGURE_DPI)
    axes = figure.subplots()
    for label, precision, sd in zip(("central crop", "10 views"), precisions, [None] * 2 if sds is None else sds):
        line, = axes.plot(minutes, 100 * precision, marker="o", markersize=4,
                          label=label if sd is None else f"{label}, mean ± sd")
        if sd is not None:
            axes.fill_between(minutes, 100 * (precision - sd), 100 * (precision + sd), color=line.get_color(),
                              alpha=0.25, linewidth=0)
    axes.set_xlabel("minutes since the trainer started (wall clock)")
    axes.set_ylabel("precision @ 1 (accuracy), %")
    axes.margins(x=0.03)  # the last point whole
    axes.set_xlim(left=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    axes.set_title(title, fontsize=10)
    caption_lines = textwrap.wrap(caption, CAPTION_CHARACTERS)
    figure.text(0.01, 0.01, "\n".join(caption_lines), fontsize=7, family="monospace", va="bottom")
    figure.tight_layout(rect=(0, CAPTION_LINE_HEIGHT * len(caption_lines) + 0.01, 1, 1))
    figure.savefig(path)


def refusal(args, trainer_flags):
    """Why these arguments cannot make a curve (one paragraph), or None."""
    if os.path.isdir(args.train_dir) and os.listdir(args.train_dir):
        # Never deletes what it did not write: the curve needs a run of its own from step 0.
        return (f"--train_dir={args.train_dir} is not empty. Pass a new or empty folder for this curve's "
                "run; nothing was changed.")
    if args.seeds < 1:
        return f"--seeds={args.seeds}: it must be at least 1."
    if args.seeds == 1:
        return None
    if "seed" not in {field.name for field in dataclasses.fields(TrainConfig)}:
        return (f"--seeds={args.seeds} passes --seed=<k> to cifar10_train.py, but this version of the trainer has "
                "no --seed flag (cifar10/config.py, TrainConfig.seed). Update the project, or use --seeds=1.")
    if any(flag.startswith("--seed=") or flag == "--seed" for flag in trainer_flags):
        return f"--seeds={args.seeds} gives run k --seed=k itself: leave --seed out."
    if args.save_checkpoint_steps <= 0:
        return (f"--seeds={args.seeds} matches the runs' points by step, so every run must save at the same steps: "
                "pass --save_checkpoint_steps=N (for example a tenth of the run's steps; --save_checkpoint_secs=0 "
                "saves by steps only).")
    return None


def parser():
    """The command line's parser: its own flags; parse_known_args leaves the trainer's."""
    # No abbreviations: the trainer's --seed=7 is not this script's --seeds.
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--train_dir", default="/tmp/cifar10_curve", help="A new or empty folder.")
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--save_checkpoint_secs", type=float, default=120)
    parser.add_argument("--save_checkpoint_steps", type=int, default=0,
                        help="Also save every this many steps (needed by --seeds > 1).")
    parser.add_argument("--seeds", type=int, default=1,
                        help="Runs to train, with --seed=0 to N - 1 (one after the other); the curve is their mean "
                             "and sample standard deviation.")
    return parser


def main():
    args, trainer_flags = parser().parse_known_args()
    problem = refusal(args, trainer_flags)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:  # as the trainer would, before this script reads the test records
        data.maybe_download_and_extract(args.data_dir)
    except Cifar10Error as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    test_files = data.data_files(args.data_dir, "test")
    test_count = data.count_records(test_files)
    datasets = [data.evaluation_dataset(test_files, 1000 // views, test_count, views) for views in EVALUATED_VIEWS]
    model = Cifar10Model()
    predict = evaluator.make_predict(model)
    title = (f"--recipe={args.recipe}: precision @ 1 on {os.path.basename(test_files[0])} ({test_count} records), "
             f"trained on {data.TRAIN_FILES[0]}..{data.TRAIN_FILES[-1]} "
             f"({data.count_records(data.data_files(args.data_dir))} records)")
    caption = "python -m benchmarks.recipe_curve " + " ".join(sys.argv[1:])

    runs = []
    for seed in range(args.seeds):
        run_dir = args.train_dir if args.seeds == 1 else os.path.join(args.train_dir, f"seed_{seed}")
        command = [sys.executable, os.path.join(REPO, "cifar10_train.py"), f"--data_dir={args.data_dir}",
                   f"--train_dir={run_dir}", f"--recipe={args.recipe}",
                   f"--save_checkpoint_secs={args.save_checkpoint_secs}", "--log_frequency=100"]
        if args.save_checkpoint_steps:
            command.append(f"--save_checkpoint_steps={args.save_checkpoint_steps}")
        if args.seeds > 1:
            command.append(f"--seed={seed}")
            print(f"seed {seed} of {args.seeds}, in {run_dir}:", flush=True)
        copies, steps_per_epoch = train_and_keep_checkpoints(command + trainer_flags, run_dir)
        runs.append(evaluate_run(copies, steps_per_epoch, datasets, model, predict))
        write_tsv(os.path.join(run_dir, "curve.tsv"), RUN_COLUMNS, runs[-1])
        run_title = title if args.seeds == 1 else f"{title}, --seed={seed}"
        plot_curve(os.path.join(run_dir, "curve.png"), runs[-1][:, 0], runs[-1][:, 3:].T, None,
                   textwrap.fill(run_title, CAPTION_CHARACTERS - 20), caption)

    if args.seeds > 1:
        means = mean_over_runs(runs)
        print(f"mean and sample standard deviation (n - 1) over {args.seeds} seeds, at each step every run saved "
              f"(minutes: their mean):", flush=True)
        print("\t".join(MEAN_COLUMNS))
        for row in means:
            print(format_row(row), flush=True)
        write_tsv(os.path.join(args.train_dir, "curve.tsv"), MEAN_COLUMNS, means)
        plot_curve(os.path.join(args.train_dir, "curve.png"), means[:, 0], means[:, [3, 5]].T, means[:, [4, 6]].T,
                   textwrap.fill(f"{title}; mean ± sample sd of {args.seeds} seeds", CAPTION_CHARACTERS - 20),
                   caption)
    print(f"curve: {os.path.join(args.train_dir, 'curve.tsv')}, {os.path.join(args.train_dir, 'curve.png')}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
