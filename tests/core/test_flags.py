"""Numeric flags: NaN, infinities and out-of-range values are refused with one line naming the flag,
for every numeric flag of `curate` and `train` (issue 17.7: `--t inf` dropped every English image)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from core.errors import UserError
from core.flags import number
from curation import cli as curate_cli
from curation.balance import thresholds
from training import cli as train_cli


def numeric_actions():
    """(parser, option, type) of every flag of `curate` and `train` whose value is a number."""
    parsers = [curate_cli.build_parser(), train_cli.build_parser([]), train_cli.build_parser(["eval"]),
               train_cli.build_parser(["tokenizer"])]
    seen = []
    while parsers:
        p = parsers.pop()
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                parsers.extend(a.choices.values())
            elif a.option_strings and (a.type in (int, float)
                                       or getattr(a.type, "__name__", "").startswith("a finite")):
                seen.append((p.prog, a.option_strings[-1], a.type))
    return seen


def test_every_numeric_flag_refuses_nan_and_infinity():
    actions = numeric_actions()
    flags = {flag for _, flag, _ in actions}
    assert {"--t", "--p", "--shard-size", "--part-size", "--lr", "--epochs", "--curation-t"} <= flags
    for prog, flag, kind in actions:
        assert kind is not float, f"{prog} {flag}: parsed by bare float, so nan/inf pass"
        for bad in ("nan", "inf", "-inf", "1e999"):
            with pytest.raises((argparse.ArgumentTypeError, ValueError)):
                kind(bad)


def test_t_inf_is_refused_in_one_line(capsys):
    assert curate_cli.main(["balance", "--index", "I", "--out", "O", "--t", "inf"]) == 2
    assert capsys.readouterr().err == ("curate: error: argument --t: inf is not a finite number > 0 "
                                       "(see curate balance --help)\n")
    counts = np.array([5, 50, 500], dtype=np.int64)
    with pytest.raises(UserError, match="--t must be a finite number > 0"):
        thresholds({"en": (np.arange(3), counts)}, t=float("inf"))


@pytest.mark.parametrize("argv,flag", [
    (["balance", "--index", "I", "--out", "O", "--t", "10", "--p", "1.5"], "--p"),
    (["balance", "--index", "I", "--out", "O", "--t", "0"], "--t"),
    (["balance", "--index", "I", "--out", "O", "--t", "10", "--shard-size", "0"], "--shard-size"),
    (["build-index", "--pool", "P", "--metadata", "M", "--out", "O", "--part-size", "-5"], "--part-size"),
])
def test_out_of_range_values_name_the_flag(argv, flag, capsys):
    assert curate_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {flag}:" in err


def test_number_bounds():
    assert number(int, 1)("3") == 3 and number(float, 0, 1)("1") == 1.0
    with pytest.raises(argparse.ArgumentTypeError, match="'x' is not a finite integer >= 1"):
        number(int, 1)("x")
    with pytest.raises(argparse.ArgumentTypeError, match="0 is not a finite number > 0"):
        number(float, 0, lo_open=True)("0")
