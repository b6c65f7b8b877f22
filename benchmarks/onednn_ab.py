"""oneDNN's CPU kernels against TensorFlow's own (Eigen) on this machine: the measurement
behind cifar10.startup.use_onednn, which turns oneDNN on for every x86-64 CPU.

    python -m benchmarks.onednn_ab [--data_dir=/tmp/cifar10_data] [--rounds=3]

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it is imported, so the two kernels
cannot be timed in one process. Each round runs benchmarks/benchmark.py (float32) once
with TF_ENABLE_ONEDNN_OPTS=0 and once with =1, the two in turn, the first alternating
from round to round, so that whatever else the machine does falls on both alike. The
table gives each row's median over the rounds and oneDNN's speed-up. Not a test: CI
does not run it.
"""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys

from cifar10 import startup

REPO = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = {"0": "TensorFlow's own (Eigen)", "1": "oneDNN"}
# A row of benchmark.py's table: what, examples/sec.
ROW = re.compile(r"^\| (training: [^|]+?|input pipeline alone|evaluation, [^|]+?) \| ([\d.]+) \|", re.M)


def benchmark_rates(setting, flags):
    """{row: examples/sec} of one benchmark.py run with TF_ENABLE_ONEDNN_OPTS=setting."""
    env = dict(os.environ, **{startup.ONEDNN_VARIABLE: setting})
    run = subprocess.run([sys.executable, "-m", "benchmarks.benchmark", "--precisions=float32", *flags],
                         cwd=REPO, env=env, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"benchmarks/benchmark.py with {startup.ONEDNN_VARIABLE}={setting} failed:\n{run.stderr}")
    return {what: float(rate) for what, rate in ROW.findall(run.stdout)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", help="CIFAR-10 data folder; default: random records (benchmark.py's).")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of benchmark.py with each setting.")
    parser.add_argument("--rows", default="step,trainer", help="benchmark.py's --rows.")
    parser.add_argument("--windows", type=int, default=2, help="benchmark.py's --windows, in each run.")
    args = parser.parse_args()
    flags = [f"--rows={args.rows}", f"--windows={args.windows}"] + (
        [f"--data_dir={args.data_dir}"] if args.data_dir else [])
    rates = {setting: [] for setting in SETTINGS}
    for round_number in range(args.rounds):
        order = list(SETTINGS) if round_number % 2 == 0 else list(reversed(SETTINGS))
        for setting in order:
            rates[setting].append(benchmark_rates(setting, flags))
            print(f"round {round_number + 1}/{args.rounds}, {startup.ONEDNN_VARIABLE}={setting}: done", flush=True)

    print(f"\noneDNN against TensorFlow's own CPU kernels: {args.rounds} rounds of benchmarks/benchmark.py "
          f"{' '.join(flags)} --precisions=float32, each setting in turn; medians over the rounds of each "
          "run's own median; examples/sec counts training examples (one view each), or images evaluated\n")
    print(f"| what | {SETTINGS['0']}, examples/sec | {SETTINGS['1']}, examples/sec | oneDNN / own |")
    print("| --- | ---: | ---: | ---: |")
    for what in rates["0"][0]:
        own, onednn = (statistics.median(run[what] for run in rates[setting]) for setting in SETTINGS)
        print(f"| {what} | {own:.1f} | {onednn:.1f} | {onednn / own:.2f}x |")


if __name__ == "__main__":
    main()
