"""TrainConfig is the one home of `train`'s defaults: every flag's default is its field's."""
from __future__ import annotations

import ast
from dataclasses import MISSING, fields
from pathlib import Path

from training.cli import build_parser
from training.config import TrainConfig

REQUIRED = ["--shards", "S", "--tokenizer", "T", "--out", "O", "--steps", "3"]


def test_every_flag_defaults_to_its_trainconfig_field():
    args = vars(build_parser(REQUIRED).parse_args(REQUIRED))
    given = {"shards": "S", "tokenizer": "T", "out": "O", "steps": 3}
    for f in fields(TrainConfig):
        if f.name == "model_vocab":  # not a flag (benchmarks set it)
            continue
        assert f.name in args, f"TrainConfig.{f.name} has no flag"
        assert args[f.name] == given.get(f.name, None if f.default is MISSING else f.default), f.name


def test_train_cli_writes_no_default_itself():
    tree = ast.parse((Path(__file__).resolve().parents[2] / "training" / "train_cli.py").read_text())
    literal = [kw.value.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
               for kw in node.keywords if kw.arg == "default"]
    assert literal == []
