"""``use_backend`` is scoped to the thread or asyncio task that entered it, nests, and is
undone however its block ends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import numpy as np
import pytest

import chanconv

X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
MULTI_IN = [[56.0, 72.0], [104.0, 120.0]]


def _seen() -> tuple[str, str]:
    """(active name, backend of an op's result on lists) as this thread/task sees them."""
    y = chanconv.corr2d_multi_in(X, K)
    adapter = chanconv.backend_for(y)
    assert adapter is not None
    assert adapter.to_numpy(y).tolist() == MULTI_IN
    return chanconv.active_name(), adapter.name


def _run_threads(*targets: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as err:  # surfaced in the test's thread below
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    if errors:
        raise errors[0]


def test_two_threads_each_see_their_own_choice(grid):
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, list[tuple[str, str]]] = {"numpy": [], "grid": []}

    def worker(name: str) -> Callable[[], None]:
        def run() -> None:
            seen[name].append(_seen())  # before: the default
            with chanconv.use_backend(name):
                barrier.wait()  # both threads are inside their blocks now
                seen[name].append(_seen())
                barrier.wait()
                seen[name].append(_seen())
                barrier.wait()
            barrier.wait()  # both have left
            seen[name].append(_seen())

        return run

    _run_threads(worker("numpy"), worker("grid"))
    for name in ("numpy", "grid"):
        assert seen[name] == [("numpy", "numpy"), (name, name), (name, name), ("numpy", "numpy")]
    assert chanconv.active_name() == "numpy"


def test_a_new_thread_does_not_inherit_use_backend(grid):
    seen: list[tuple[str, str]] = []
    with chanconv.use_backend("grid"):
        _run_threads(lambda: seen.append(_seen()))
        assert _seen() == ("grid", "grid")
    assert seen == [("numpy", "numpy")]


def test_a_new_thread_does_see_set_backend(grid):
    seen: list[tuple[str, str]] = []
    chanconv.set_backend("grid")
    _run_threads(lambda: seen.append(_seen()))
    assert seen == [("grid", "grid")]


def test_two_asyncio_tasks_each_see_their_own_choice(grid):
    log: list[tuple[str, str, str]] = []

    async def task(name: str) -> None:
        with chanconv.use_backend(name):
            for _ in range(3):
                log.append((name, *_seen()))
                await asyncio.sleep(0)  # let the other task run inside its own block
        log.append((f"{name} after", *_seen()))

    async def main() -> None:
        await asyncio.gather(task("numpy"), task("grid"))
        log.append(("main", *_seen()))

    asyncio.run(main())
    inside = [entry for entry in log if entry[0] in ("numpy", "grid")]
    assert [who for who, *_ in inside] == ["numpy", "grid"] * 3  # they did interleave
    for who, active, result in inside:
        assert (active, result) == (who, who)
    assert sorted(e for e in log if e[0] not in ("numpy", "grid")) == [
        ("grid after", "numpy", "numpy"),
        ("main", "numpy", "numpy"),
        ("numpy after", "numpy", "numpy"),
    ]


def test_a_task_started_inside_a_block_inherits_it_but_cannot_change_it(grid):
    async def child() -> tuple[str, str]:
        with chanconv.use_backend("numpy"):
            await asyncio.sleep(0)
        return _seen()

    async def main() -> tuple[tuple[str, str], tuple[str, str]]:
        with chanconv.use_backend("grid"):
            inherited = await asyncio.create_task(child())
            return inherited, _seen()

    assert asyncio.run(main()) == (("grid", "grid"), ("grid", "grid"))


def test_nesting_restores_the_outer_choice(grid):
    chanconv.set_backend("grid")
    with chanconv.use_backend("numpy") as outer:
        assert outer.name == "numpy"
        assert _seen() == ("numpy", "numpy")
        with chanconv.use_backend("grid") as inner:
            assert inner is grid
            assert _seen() == ("grid", "grid")
            with chanconv.use_backend("np"):
                assert _seen() == ("numpy", "numpy")
            assert _seen() == ("grid", "grid")
        assert _seen() == ("numpy", "numpy")
    assert _seen() == ("grid", "grid")  # back to set_backend's choice
    chanconv.set_backend(None)
    assert _seen() == ("numpy", "numpy")


def test_an_exception_inside_the_block_restores_the_choice(grid):
    class Boom(Exception):
        pass

    with chanconv.use_backend("numpy"):
        with pytest.raises(Boom):
            with chanconv.use_backend("grid"):
                assert chanconv.active_name() == "grid"
                raise Boom
        assert chanconv.active_name() == "numpy"
    assert chanconv.active_name() == "numpy"
    with pytest.raises(Boom):
        with chanconv.use_backend("grid"):
            raise Boom
    assert _seen() == ("numpy", "numpy")
    assert type(chanconv.corr2d_multi_in(X, K)) is np.ndarray


def test_a_failed_use_backend_changes_nothing(grid):
    with chanconv.use_backend("grid"):
        with pytest.raises(ValueError, match="nosuch"):
            with chanconv.use_backend("nosuch"):
                pass
        assert chanconv.active_name() == "grid"
