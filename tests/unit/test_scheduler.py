"""Admission control: N running, M waiting, FIFO, immediate refusal, places given back."""

from __future__ import annotations

import asyncio

import pytest

from chatstream.scheduler import DrainingError, QueueFullError, Scheduler


async def test_burst_of_n_plus_m_is_admitted_whole_and_the_next_refused():
    scheduler = Scheduler(max_running=2, max_waiting=3)
    tickets = [scheduler.reserve() for _ in range(5)]
    assert scheduler.running == 2 and scheduler.waiting == 3
    with pytest.raises(QueueFullError):
        scheduler.reserve()
    assert [t.running for t in tickets] == [True, True, False, False, False]


async def test_queue_of_one_is_bounded_and_zero_means_no_waiting():
    one = Scheduler(max_running=1, max_waiting=1)
    one.reserve()
    one.reserve()
    with pytest.raises(QueueFullError):
        one.reserve()
    zero = Scheduler(max_running=1, max_waiting=0)
    zero.reserve()
    with pytest.raises(QueueFullError):
        zero.reserve()


async def test_waiters_start_in_fifo_order():
    scheduler = Scheduler(max_running=1, max_waiting=3)
    first = scheduler.reserve()
    waiters = [scheduler.reserve() for _ in range(3)]
    order: list[int] = []

    async def run(index: int) -> None:
        await waiters[index].wait()
        order.append(index)
        await asyncio.sleep(0)
        waiters[index].release()

    tasks = [asyncio.create_task(run(i)) for i in (2, 0, 1)]
    await asyncio.sleep(0)
    first.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert scheduler.running == 0 and scheduler.waiting == 0


async def test_cancelled_waiter_gives_its_place_back():
    scheduler = Scheduler(max_running=1, max_waiting=1)
    holder = scheduler.reserve()
    waiter = scheduler.reserve()
    task = asyncio.create_task(waiter.wait())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert scheduler.waiting == 0
    replacement = scheduler.reserve()  # the freed place is usable at once
    holder.release()
    await asyncio.wait_for(replacement.wait(), 1)
    assert replacement.running


async def test_release_is_idempotent_and_drain_refuses_new_work():
    scheduler = Scheduler(max_running=1, max_waiting=0)
    ticket = scheduler.reserve()
    ticket.release()
    ticket.release()
    assert scheduler.running == 0
    busy = scheduler.reserve()
    scheduler.start_draining()
    with pytest.raises(DrainingError):
        scheduler.reserve()
    assert not await scheduler.wait_idle(0.01)
    busy.release()
    assert await scheduler.wait_idle(1)
