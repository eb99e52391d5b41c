"""The controller: one broker of the cluster, elected through the coordination store, that keeps every
partition led by a live broker (Kafka's controller, in its ZooKeeper form).

Election: every broker campaigns (``run``); the one whose ephemeral ``/controller`` node is created
is controller and bumps ``/controller_epoch``. Its writes are fenced by that epoch (a controller
that lost its session cannot write once another was elected: kbroker.coordination.cluster), and a
broker whose session is lost stops acting as controller at once.

What it does, on every change of the broker set (and every few seconds, for states written by
others in between) -- ``elect_leaders_for``, a pure function of one partition's state:

- a partition whose leader is gone (or shutting down, see below) gets a new leader: the first
  replica, in assignment order, that is in the ISR and alive; the ISR keeps its live members;
  the leader epoch goes up by one. None alive in the ISR: with ``unclean.leader.election.enable``
  the first live replica leads with an ISR of itself (records only the old ISR had are lost, as
  Kafka warns); without it the partition is offline (leader -1, ISR unchanged, so the last in-sync
  replica leads again when it returns).
- a dead follower leaves the ISR (the leader epoch stays: KRaft's rule; only a leader change bumps it).
- a broker shutting down (controlled shutdown: it created ``/admin/controlled_shutdown/<id>``,
  ephemeral) is treated as gone while it is alive: its leaderships move first and it leaves the
  ISRs it is in (so the new leaders' high watermarks do not wait for it); a partition with no other
  in-sync replica keeps it as leader (Kafka does the same).

Elections asked for (ElectLeaders, kafka-leader-election): a broker writes the partitions into
``/admin/preferred_replica_election`` (Kafka's node, plus ``"election_type"``: 0 preferred, 1
unclean); the controller carries them out and deletes the node. Preferred: the first replica leads
if it is alive and in the ISR (``elect_preferred``). Unclean: a partition with no live in-sync
replica gets a live replica as leader. With ``auto.leader.rebalance.enable`` the controller also
moves leadership back to the preferred replicas every ``leader.imbalance.check.interval.seconds``
(Kafka checks a per-broker imbalance ratio first; here every partition whose preferred replica can
lead is moved).

Partitions' first states are written when their topic is created (kbroker.coordination.cluster).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Callable, Iterable

import trio

from .cluster import SHUTDOWN_PATH, ClusterCoordination, Fence, NotController, PartitionState
from .store import BadVersion, CoordinationError, NoNode
from .view import ClusterView

log = logging.getLogger("kbroker.controller")

NO_LEADER = -1
RECHECK_SECONDS = 2.0


def elect_leaders_for(state: PartitionState, replicas: Iterable[int], alive: set[int], eligible: set[int],
                      unclean: bool) -> PartitionState | None:
    """The partition's next state given the live brokers (``eligible``: live and not shutting
    down), or None when it stays as it is. Brokers gone or shutting down leave the ISR, unless one
    must stay the leader."""
    replicas = tuple(replicas)
    leader, epoch = state.leader, state.leader_epoch
    if leader not in eligible:
        candidates = [r for r in replicas if r in state.isr and r in eligible]
        if candidates:
            leader = candidates[0]
        elif leader in alive:
            pass  # shutting down, and nobody else in sync: it keeps leading
        elif unclean and (live := [r for r in replicas if r in eligible]):
            log.warning("unclean election: %d leads with an ISR of itself", live[0])
            return replace(state, leader=live[0], leader_epoch=epoch + 1, isr=(live[0],))
        elif leader == NO_LEADER:
            return None
        else:  # offline: the ISR is kept, so its last member leads again when it returns
            return replace(state, leader=NO_LEADER, leader_epoch=epoch + 1)
    isr = tuple(r for r in state.isr if r in eligible or r == leader)
    if leader not in isr:
        isr = (*isr, leader)
    if leader == state.leader and isr == state.isr:
        return None
    return replace(state, leader=leader, leader_epoch=epoch + 1 if leader != state.leader else epoch, isr=isr)


ELECTION_PATH = "/admin/preferred_replica_election"
PREFERRED, UNCLEAN = 0, 1


def elect_preferred(state: PartitionState, replicas: Iterable[int], eligible: set[int]) -> PartitionState | None:
    """The preferred replica leads, if it can (alive, in the ISR) and does not already."""
    preferred = next(iter(replicas), NO_LEADER)
    if preferred == state.leader or preferred not in eligible or preferred not in state.isr:
        return None
    return replace(state, leader=preferred, leader_epoch=state.leader_epoch + 1)


def elect_unclean(state: PartitionState, replicas: Iterable[int], eligible: set[int]) -> PartitionState | None:
    """A live replica leads a partition no live in-sync replica can lead."""
    if state.leader in eligible or any(r in eligible for r in state.isr):
        return None
    live = [r for r in replicas if r in eligible]
    if not live:
        return None
    return replace(state, leader=live[0], leader_epoch=state.leader_epoch + 1, isr=(live[0],))


class Controller:
    def __init__(self, coordination: ClusterCoordination, view: ClusterView,
                 unclean_election: Callable[[str], bool], rebalance_interval_s: float | None = None):
        self.coordination = coordination
        self.view = view
        self.unclean_election = unclean_election  # the topic's unclean.leader.election.enable
        self.rebalance_interval_s = rebalance_interval_s  # None: auto.leader.rebalance.enable off
        self.fence: Fence | None = None

    @property
    def is_controller(self) -> bool:
        return self.fence is not None

    async def run(self) -> None:
        """Campaign, and control while elected; until cancelled or the session is lost."""
        store = self.coordination.store
        await self.coordination.ensure_layout()
        try:
            await store.create(SHUTDOWN_PATH, make_parents=True)
        except CoordinationError:
            pass
        while not store.lost.is_set():
            fence = await self.coordination.elect()
            if fence is None:
                controller, changed = await self.coordination.watch_controller()
                if controller is not None:
                    await _first_of(changed, store.lost)
                continue
            log.info("broker %d is the controller (controller epoch %d)", self.coordination.node_id,
                     fence.controller_epoch)
            self.fence = fence
            try:
                await self._control(fence)
            except NotController as exc:
                log.warning("broker %d is no longer the controller: %s", self.coordination.node_id, exc)
            finally:
                self.fence = None

    async def _control(self, fence: Fence) -> None:
        store = self.coordination.store
        next_rebalance = trio.current_time() + (self.rebalance_interval_s or 0)
        while not store.lost.is_set():
            alive, brokers_changed = await self.coordination.watch_brokers()
            shutting, shutdown_changed = await store.children_watch(SHUTDOWN_PATH)
            eligible = set(alive) - {int(s) for s in shutting}
            conflicts = await self.elect_leaders(fence, set(alive), eligible)
            asked, election_changed = await store.get_watch(ELECTION_PATH)
            if asked is not None:
                conflicts += await self._asked_elections(fence, asked, eligible)
            if self.rebalance_interval_s is not None and trio.current_time() >= next_rebalance:
                next_rebalance = trio.current_time() + self.rebalance_interval_s
                conflicts += await self._elect(fence, None, lambda _name, s, r: elect_preferred(s, r, eligible))
            with trio.move_on_after(0.05 if conflicts else RECHECK_SECONDS):
                await _first_of(brokers_changed, shutdown_changed, election_changed, store.lost)

    async def _asked_elections(self, fence: Fence, asked, eligible: set[int]) -> int:
        request = json.loads(asked.data)
        wanted = {(p["topic"], int(p["partition"])) for p in request.get("partitions", [])}
        if request.get("election_type", PREFERRED) == UNCLEAN:
            conflicts = await self._elect(fence, wanted, lambda _name, s, r: elect_unclean(s, r, eligible))
        else:
            conflicts = await self._elect(fence, wanted, lambda _name, s, r: elect_preferred(s, r, eligible))
        if not conflicts:
            try:
                await self.coordination.store.delete(ELECTION_PATH, asked.version)
            except CoordinationError:
                pass
        return conflicts

    async def _elect(self, fence: Fence, wanted: set[tuple[str, int]] | None, rule) -> int:
        """Apply ``rule(topic, state, replicas)`` -- the next state or None -- to the partitions
        ``wanted`` (None: all) and write the changes, each topic's at once; returns how many topics'
        writes met a state changed since read (a deletion, an ISR update: the next round retries)."""
        conflicts = 0
        for name, assignment in list(self.view.topics.items()):
            new_states = {}
            for partition, replicas in assignment.replicas.items():
                state = self.view.state(name, partition)
                if state is None or (wanted is not None and (name, partition) not in wanted):
                    continue
                new = rule(name, state, replicas)
                if new is not None:
                    new_states[partition] = new
            if not new_states:
                continue
            try:
                await self.coordination.elect_leaders(fence, name, new_states)
            except (BadVersion, NoNode):
                conflicts += 1
                continue
            for partition, state in sorted(new_states.items()):
                log.info("partition %s-%d: leader %d, leader epoch %d, isr %s", name, partition, state.leader,
                         state.leader_epoch, list(state.isr))
        return conflicts

    async def elect_leaders(self, fence: Fence, alive: set[int], eligible: set[int]) -> int:
        """Write the next state of every partition that needs one; returns how many topics' writes
        met a state changed since read (to be retried soon, once this broker's view has it)."""
        return await self._elect(fence, None, lambda name, state, replicas: elect_leaders_for(
            state, replicas, alive, eligible, self.unclean_election(name)))


async def _first_of(*events: trio.Event) -> None:
    """Return when any of the events is set."""
    async with trio.open_nursery() as nursery:
        for event in events:
            async def wait(event=event):
                await event.wait()
                nursery.cancel_scope.cancel()
            nursery.start_soon(wait)
