"""The README's flag tables say what the programs take: every flag, with its default."""
import dataclasses
import re

import pytest

import cifar10_eval
import cifar10_export
import cifar10_multi_gpu_train
import cifar10_train
from cifar10 import config
from conftest import REPO

ROW = re.compile(r"^\| ((?:`--\w+`(?:, )?)+) \|(.*?)\| .* \|$", re.M)
# Defaults the README states in words: decided at run time, or too long for a table.
IN_WORDS = {"use_fp16": "on where 16-bit math is native", "num_examples": "all",
            "data_url": "the dataset's home page", "tflite": "off, on with --quantize"}


def readme_tables():
    """[{flag: default cell}] for each flag table of README.md, in order."""
    tables = []
    for block in re.split(r"\n(?!\|)", (REPO / "README.md").read_text()):
        rows = ROW.findall(block)
        if rows:
            tables.append({flag: default.strip().strip("`") for flags, default in rows
                           for flag in re.findall(r"`(--\w+)`", flags)})
    return tables


def script_flags(capsys, main):
    """The flags a script's --help lists."""
    with pytest.raises(SystemExit):
        main(["--help"])
    return set(re.findall(r"^  (--\w+)", capsys.readouterr().out, re.M))


def documented_default(value):
    """How the README writes a default: booleans in lower case, whole floats as integers,
    a recipe by its name."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(getattr(value, "name", value))


@pytest.mark.parametrize("table_index, config_class, mains", [
    (0, config.TrainConfig, [cifar10_train.main, cifar10_multi_gpu_train.main]),
    (1, config.EvalConfig, [cifar10_eval.main]),
    (2, config.ExportConfig, [cifar10_export.main]),
])
def test_each_flag_table_lists_every_flag_with_its_default(capsys, table_index, config_class, mains):
    table = readme_tables()[table_index]
    assert set(table) == set.union(*(script_flags(capsys, main) for main in mains))
    for field in dataclasses.fields(config_class):
        cell = table[f"--{field.name}"]
        if not cell:  # "as for training"
            continue
        if field.name in IN_WORDS:
            assert cell == IN_WORDS[field.name]
        else:
            assert cell.split(" ")[0] == documented_default(field.default), field.name
