"""The server: from accepted sockets to handlers and back.

- connection: one task per connection, reading a request, answering it, reading the next;
- transport: what the connection asks of its byte stream (receive, send, close; the idle deadline),
  implemented by socket_transport (plain TCP: recv_into, sendmsg, sendfile) and tls_transport
  (trio.SSLStream);
- session: who is on the other end and how they came in, carried by every request's context;
- dispatch: one frame to its handler and the response frame back.

Framing is sans-IO and lives below, in kbroker.protocol.framing; the listeners are opened by the
Broker (kbroker.broker), which picks each connection's transport.
"""
