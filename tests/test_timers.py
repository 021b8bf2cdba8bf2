"""The timer wheel behind the hot path's deadlines (interlock/timers.py): asyncio.timeout semantics."""

from __future__ import annotations

import asyncio

import pytest

from interlock.core.timers import TICK, Expiry, expire_in, wheel


async def test_expiry_raises_timeout_error_in_the_block_and_not_much_late() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError), expire_in(0.05):
        await asyncio.sleep(5)
    elapsed = loop.time() - start
    assert 0.05 <= elapsed + 1e-3 < 0.05 + 5 * TICK
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_block_that_finishes_in_time_is_untouched_and_disarms() -> None:
    loop = asyncio.get_running_loop()
    with expire_in(0.05):
        await asyncio.sleep(0.01)
    assert len(wheel(loop)) == 0
    await asyncio.sleep(0.08)  # nothing fires later either
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_moving_later_postpones_and_moving_earlier_advances() -> None:
    loop = asyncio.get_running_loop()
    later = Expiry(loop, loop.time() + 0.03)
    start = loop.time()
    with later:
        later.reschedule(loop.time() + 0.12)
        await asyncio.sleep(0.08)  # would have fired at 0.03
    assert loop.time() - start >= 0.08
    earlier = Expiry(loop, loop.time() + 60)
    start = loop.time()
    with pytest.raises(TimeoutError), earlier:
        earlier.reschedule(loop.time() + 0.03)
        await asyncio.sleep(5)
    assert loop.time() - start < 0.03 + 5 * TICK


async def test_an_idle_deadline_pushed_on_every_step_never_fires_while_steps_keep_coming() -> None:
    loop = asyncio.get_running_loop()
    idle = Expiry(loop, loop.time() + 0.04)
    with idle:
        for _ in range(10):
            await asyncio.sleep(0.015)
            idle.reschedule(loop.time() + 0.04)
    with pytest.raises(TimeoutError), idle:
        await asyncio.sleep(1)


async def test_reentering_one_expiry_spans_both_blocks() -> None:
    loop = asyncio.get_running_loop()
    expiry = Expiry(loop, loop.time() + 0.06)
    with expiry:
        await asyncio.sleep(0.04)
    with pytest.raises(TimeoutError), expiry:
        await asyncio.sleep(0.2)  # only ~0.02 s were left


async def test_someone_elses_cancel_stays_a_cancel() -> None:
    async def body() -> None:
        with expire_in(10):
            await asyncio.sleep(10)

    task = asyncio.create_task(body())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_outer_cancel_racing_the_expiry_is_not_swallowed() -> None:
    """Like asyncio.timeout: when the task was also cancelled from outside, CancelledError wins."""
    loop = asyncio.get_running_loop()
    expiry = Expiry(loop, loop.time() + 10)  # fired by hand below, not by the wheel
    entered = asyncio.Event()

    async def body() -> None:
        with expiry:
            entered.set()
            await asyncio.sleep(1)

    victim = asyncio.create_task(body())
    await entered.wait()

    def race() -> None:
        expiry.fire()  # the deadline passes ...
        victim.cancel()  # ... and someone else cancels in the same loop iteration

    loop.call_soon(race)
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert expiry.fired


async def test_many_concurrent_deadlines_each_fire_once_and_the_wheel_empties() -> None:
    loop = asyncio.get_running_loop()
    outcomes: list[str] = []

    async def one(timeout: float, work: float) -> None:
        try:
            with expire_in(timeout):
                await asyncio.sleep(work)
            outcomes.append("done")
        except TimeoutError:
            outcomes.append("timeout")

    await asyncio.gather(*(one(0.03, 0.0 if i % 2 else 1.0) for i in range(200)))
    assert outcomes.count("timeout") == 100 and outcomes.count("done") == 100
    assert len(wheel(loop)) == 0
    await asyncio.sleep(3 * TICK)
    assert wheel(loop)._handle is None  # stops ticking when nothing is armed


def test_outside_a_task_is_a_clear_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        expiry = Expiry(loop, loop.time() + 1)
        with pytest.raises(RuntimeError):
            expiry.__enter__()
    finally:
        loop.close()
