"""The coordinator runtime's deadline timers, on trio's MockClock: a timer fires at its deadline, a
heartbeat moves it, a cancel stops it; one armed before the coordinator runs fires once it does; a
failing callback costs only itself; and an expired timer runs behind the work its expiry found
ready (the requests already received, in a broker), also when re-armed or cancelled while it waits."""

from __future__ import annotations

import logging

import trio

from kbroker.coordinator import Timers


async def test_a_timer_fires_at_its_deadline_moves_when_rearmed_and_stops_when_cancelled(autojump_clock):
    fired = []
    timers = Timers()
    async with trio.open_nursery() as nursery:
        timers.attach(nursery)
        start = trio.current_time()
        timers.schedule("session", 10_000, lambda: fired.append(("session", trio.current_time() - start)))
        timers.schedule("join", 5_000, lambda: fired.append(("join", trio.current_time() - start)))
        timers.schedule("sync", 15_000, lambda: fired.append(("sync", trio.current_time() - start)))
        for _ in range(3):  # heartbeats every 4 s keep pushing the session deadline
            await trio.sleep(4)
            timers.schedule("session", 10_000, lambda: fired.append(("session", trio.current_time() - start)))
            timers.cancel("sync")
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert fired == [("join", 5.0), ("session", 22.0)]


async def test_a_timer_armed_before_the_coordinator_runs_fires_once_it_does(autojump_clock):
    fired = []
    timers = Timers()
    timers.schedule("loaded", 1_000, lambda: fired.append(trio.current_time()))
    await trio.sleep(5)
    assert fired == []  # no nursery serves it yet
    async with trio.open_nursery() as nursery:
        attached = trio.current_time()
        timers.attach(nursery)
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert fired == [attached + 1.0]


async def test_a_failing_callback_is_logged_and_the_other_timers_go_on(autojump_clock, caplog):
    fired = []
    timers = Timers()
    with caplog.at_level(logging.ERROR, logger="kbroker.coordinator"):
        async with trio.open_nursery() as nursery:
            timers.attach(nursery)
            timers.schedule("broken", 10, lambda: 1 / 0)
            timers.schedule("fine", 20, lambda: fired.append("fine"))
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    assert fired == ["fine"]
    assert "coordinator timer 'broken' failed" in caplog.text


async def test_an_expired_timer_runs_behind_the_work_its_expiry_found_ready(autojump_clock):
    """Like a request in its socket when the deadline passes: woken in the same batch, handled first."""
    seen = []
    timers = Timers(behind_received_requests=True)

    async def request_arriving_at(deadline: float, i: int) -> None:
        await trio.sleep_until(deadline)
        seen.append(("request", i))

    async with trio.open_nursery() as nursery:
        timers.attach(nursery)
        for i in range(20):  # trio runs a batch's tasks in no fixed order: try it many times
            deadline = trio.current_time() + 1
            nursery.start_soon(request_arriving_at, deadline, i)
            timers.schedule(("expiry", i), 1_000, lambda i=i: seen.append(("timer", i)))
            await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert seen == [event for i in range(20) for event in (("request", i), ("timer", i))]


async def test_a_timer_rearmed_or_cancelled_while_settling_behaves_as_if_it_had_not_expired(autojump_clock):
    fired = []
    timers = Timers(behind_received_requests=True)
    timers._settle_batches = 50  # a wide settling window, so the test can act inside it
    async with trio.open_nursery() as nursery:
        timers.attach(nursery)
        timers.schedule("k", 0, lambda: fired.append(("first", trio.current_time())))
        for _ in range(10):  # expired, now settling
            await trio.lowlevel.checkpoint()
        start = trio.current_time()
        timers.schedule("k", 100, lambda: fired.append(("second", trio.current_time() - start)))
        await trio.sleep(1)
        timers.schedule("c", 0, lambda: fired.append(("cancelled", 0)))
        for _ in range(10):
            await trio.lowlevel.checkpoint()
        timers.cancel("c")
        await trio.sleep(1)
        assert not timers.is_scheduled("k") and not timers.is_scheduled("c")
        nursery.cancel_scope.cancel()
    assert len(fired) == 1 and fired[0][0] == "second" and fired[0][1] >= 0.1
