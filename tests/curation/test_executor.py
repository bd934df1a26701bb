"""curation.executor's forked mode (curation.fork_pool): results in order or as they arrive, what the driver
built shared with the workers, and the one error path (a UserError as one line, a dead worker named)."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from core.errors import UserError
from curation.executor import Executor


def square_plus(x: int, *, offset: int = 0) -> tuple[int, int]:
    return x * x + offset, os.getpid()


def refuse_three(x: int) -> int:
    if x == 3:
        raise UserError(f"item {x}: refused; give another one")
    return x


def fail_three(x: int) -> int:
    if x == 3:
        raise ValueError("not a user error")
    return x


def die_on_three(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


class Holder:
    """An actor whose warm-up (a table) happens once, in the driver, before the workers that share it fork."""

    def __init__(self, base: int) -> None:
        self.base, self.table, self.built_in = base, None, []

    def warm(self, n: int) -> None:
        self.table = [i * i for i in range(1000)]
        self.built_in.append((os.getpid(), n))

    def name(self) -> str:
        return f"holder {self.base}"

    def lookup(self, i: int) -> tuple[int, int, list[tuple[int, int]]]:
        return self.base + self.table[i], os.getpid(), self.built_in


def forked(workers: int = 2) -> Executor:
    ex = Executor(workers, None, fork=True)
    assert ex.forked and not ex.in_process and ex.workers == workers
    return ex


def test_fork_needs_opt_in_and_more_than_one_worker():
    assert Executor(1, None, fork=True).in_process and not Executor(1, None, fork=True).forked
    assert forked(3).gpus() == 0


def test_map_forked_results_in_input_order_with_shared():
    with forked() as ex:
        out = ex.map(square_plus, [(i,) for i in range(20)], "squares", shared={"offset": 5})
    assert [r for r, _ in out] == [i * i + 5 for i in range(20)]
    assert os.getpid() not in {pid for _, pid in out}
    assert not mp.active_children()


def test_map_actors_forked_share_what_warm_built():
    got = {}
    with forked() as ex:
        found = ex.map_actors(Holder, (100,), "lookup", [(i,) for i in range(30)],
                              lambda item, res: got.setdefault(item[0], res), probe="name", warm="warm")
    assert found == "holder 100"
    assert sorted(got) == list(range(30)) and all(v == 100 + i * i for i, (v, *_) in got.items())
    assert all(built == [(os.getpid(), 2)] for _, _, built in got.values())  # warmed once, in the driver
    assert os.getpid() not in {pid for _, pid, _ in got.values()}
    assert not mp.active_children()


def test_user_error_in_a_worker_is_that_one_line():
    with forked() as ex, pytest.raises(UserError) as e:
        ex.map(refuse_three, [(i,) for i in range(8)], "refuse")
    assert str(e.value) == "item 3: refused; give another one"
    assert not mp.active_children()


def test_other_errors_propagate_with_the_worker_traceback():
    with forked() as ex, pytest.raises(ValueError, match="not a user error") as e:
        ex.map(fail_three, [(i,) for i in range(8)], "fail")
    assert any("fail_three" in note for note in e.value.__notes__)


def test_a_killed_worker_is_a_user_error_naming_its_item():
    with forked() as ex, pytest.raises(UserError) as e:
        ex.map(die_on_three, [(i,) for i in range(8)], "die")
    assert str(e.value) == ("a worker died while processing die task 4 of 8 (killed by signal 9); rerun the same "
                            "command to resume")
    assert not mp.active_children()
