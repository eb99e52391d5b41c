"""AppendNotifier: wakes long-polling fetches when any partition gets new data.

An event replaced at each notification, never a sleep loop. Produce notifies once per request that
appended anything (not per partition); a fetch that found fewer than min_bytes waits on it until its
max_wait_ms deadline and then reads again.
"""

from __future__ import annotations

import trio


class AppendNotifier:
    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait_until(self, deadline: float) -> None:
        """Return on the next append or at the deadline, whichever comes first."""
        with trio.move_on_at(deadline):
            await self._event.wait()
