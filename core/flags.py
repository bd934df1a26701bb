"""argparse `type=` checks for numeric flags: NaN, infinities and out-of-range values are refused by name.

`--t inf` used to pass (p_e became NaN and every English image was dropped); every numeric flag of
`curate` and `train` now goes through `number`, so argparse stops with one error line naming the flag.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable


def number(kind: type = float, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False) -> Callable[[str], float | int]:
    """A parser of finite `kind` values in [lo, hi] ((lo, hi] when `lo_open`); None bounds are open ends."""
    bound = " and ".join(filter(None, (
        None if lo is None else f"{'>' if lo_open else '>='} {lo:g}", None if hi is None else f"<= {hi:g}")))
    want = f"a finite {'integer' if kind is int else 'number'}{' ' + bound if bound else ''}"

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {want}") from None
        if not math.isfinite(value) or (lo is not None and (value <= lo if lo_open else value < lo)) \
                or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{text} is not {want}")
        return value

    parse.__name__ = want  # argparse names the type in its own messages
    return parse


POSITIVE = number(float, 0, lo_open=True)
SHARE = number(float, 0, 1)
POSITIVE_INT = number(int, 1)
COUNT = number(int, 0)
NON_NEGATIVE = number(float, 0)
FINITE = number(float)
