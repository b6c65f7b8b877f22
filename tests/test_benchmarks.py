"""The benchmark scripts keep the project's rules: they never delete what they did not write."""
import subprocess
import sys

from conftest import REPO


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
