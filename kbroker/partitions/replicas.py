"""What a partition's leader knows of its followers, and the in-sync replica rules (Kafka's Replica
and the ISR parts of Partition).

Each follower's fetch tells the leader its log end offset: a follower fetching from offset N has
every record before N. The leader keeps, per follower, that offset and the last time the follower
was caught up -- Kafka's rule: a fetch at or past the leader's log end offset now, or at or past the
log end offset the leader had at the follower's previous fetch (then it was caught up as of that
fetch). From these:

- **High watermark**: the minimum log end offset over the ISR (the leader's own included); it
  only moves forward.
- **ISR shrink**: a follower not caught up for ``replica.lag.time.max.ms`` leaves the ISR.
- **ISR expansion**: a follower outside the ISR whose log end offset reached the high watermark
  (and the start of the leader's current epoch, so it has truncated to this leader's log) joins.

Changes of the ISR are proposed here and written elsewhere (kbroker.coordination, conditional on
the partition state's version); the leader adopts a new ISR only once it is recorded, so the ISR it
computes the high watermark over always contains the recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class FollowerState:
    log_end_offset: int = -1  # unknown until the follower's first fetch
    last_caught_up_ms: int = 0
    last_fetch_ms: int = 0
    leader_end_at_last_fetch: int = -1

    def fetched(self, fetch_offset: int, leader_end: int, now_ms: int) -> None:
        if fetch_offset >= leader_end:
            self.last_caught_up_ms = now_ms
        elif fetch_offset >= self.leader_end_at_last_fetch >= 0:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_ms)
        self.log_end_offset = fetch_offset
        self.leader_end_at_last_fetch = leader_end
        self.last_fetch_ms = now_ms


def high_watermark(leader_end: int, isr: tuple[int, ...], local_id: int, followers: dict[int, FollowerState]) -> int:
    """The minimum log end offset over the ISR."""
    ends = [leader_end]
    for replica in isr:
        if replica != local_id:
            state = followers.get(replica)
            ends.append(state.log_end_offset if state is not None and state.log_end_offset >= 0 else 0)
    return min(ends)


def lagging(isr: tuple[int, ...], local_id: int, followers: dict[int, FollowerState], leader_end: int, now_ms: int,
            max_lag_ms: int) -> tuple[int, ...]:
    """The ISR members that have not been caught up for ``max_lag_ms``."""
    out = []
    for replica in isr:
        if replica == local_id:
            continue
        state = followers.get(replica)
        if state is None:
            continue  # not heard of since we became leader: its clock starts then (see Partition)
        if state.log_end_offset < leader_end and now_ms - state.last_caught_up_ms > max_lag_ms:
            out.append(replica)
    return tuple(out)
