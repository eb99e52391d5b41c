"""One client connection: read a request frame, answer it, read the next — as Kafka does.

Kafka reads a connection's next request only after the previous response is on its way (it mutes the
channel meanwhile), so responses go out in request order and a client pipelining requests waits in
its own socket buffer: that is the backpressure. kbroker does the same with one task per connection.

The bytes come and go through a Transport (kbroker.server.transport: plain socket or TLS) and are cut
into frames by the sans-IO Framer (kbroker.protocol.framing), which lends the transport its buffer.
The plain transport makes its socket calls directly and waits on trio only on EAGAIN, so a request
whose bytes are already here costs one scheduling point (for fairness and cancellation), not one per
syscall. At 2,000 requests/s on one connection the scheduling points were as costly as the request.

Every close says why, in one log line: a frame that is too large, negative in size, truncated by a
closed socket, or that does not decode, a handler's CloseConnection, or a handler bug (WARNING or
ERROR); a peer idle for connections.max.idle.ms, whether it sends nothing or stops reading its
responses (INFO). The broker and every other connection go on. The peer going away (end of stream,
reset, broken pipe) is logged at DEBUG; any other OSError of the transport (a file region whose file
went away under sendfile) at WARNING, since the peer then sees its connection closed for no reason of
its own.
"""

from __future__ import annotations

import errno
import logging

import trio

from ..handlers.context import Services
from ..handlers.registry import CloseConnection
from ..protocol.errors import ProtocolError
from ..protocol.file_region import ShortFileRegion
from ..protocol.framing import Framer
from .dispatch import dispatch
from .session import Session
from .transport import IdleConnection, Transport

log = logging.getLogger("kbroker.server")

_PEER_WENT_AWAY = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ENOTCONN, errno.ESHUTDOWN,
                   errno.ETIMEDOUT}


class Connection:
    def __init__(self, services: Services, transport: Transport, *, listener_name: str, max_frame_bytes: int):
        self.services = services
        self.transport = transport
        self.max_frame_bytes = max_frame_bytes
        self.session = Session(*transport.peer(), listener_name=listener_name,
                               security_protocol=transport.security_protocol)

    async def serve(self) -> None:
        try:
            await self._serve_requests()
        except (ProtocolError, CloseConnection, ShortFileRegion) as exc:
            log.warning("closing connection from %s: %s", self.session, exc)
        except IdleConnection as exc:
            log.info("closing idle connection from %s: %s", self.session, exc)
        except OSError as exc:
            if exc.errno in _PEER_WENT_AWAY:
                log.debug("connection from %s ended: %r", self.session, exc)
            else:
                log.warning("closing connection from %s: %r", self.session, exc)
        finally:
            await self.transport.aclose()

    async def _serve_requests(self) -> None:
        services, session, transport = self.services, self.session, self.transport
        framer = Framer(self.max_frame_bytes)
        while True:
            # one scheduling point per request: other connections get their turn, and cancellation lands
            await trio.lowlevel.checkpoint()
            while (frame := framer.next_frame()) is None:
                received = await transport.receive_into(framer.receive_buffer())
                if not received:
                    framer.end_of_stream()
                    log.debug("connection from %s closed by the client", session)
                    return
                framer.received(received)
            try:
                parts = await dispatch(services, session, frame)
            except (ProtocolError, CloseConnection):
                raise
            except Exception:  # a handler bug must cost one connection, never the broker
                log.exception("closing connection from %s after an internal error", session)
                return
            if parts is not None:
                await transport.send(parts)
