"""InitProducerId (key 22), versions 0-5: a producer id and epoch for an idempotent or transactional
producer.

Java producers enable idempotence by default, so every one of them calls this first; aiokafka only
knows v0. A producer without a transactional id gets a fresh id with epoch 0 each time (as Kafka
does, even when v3+ names its previous id). A transactional id goes to the transaction coordinator
(kbroker.txn): it keeps its producer id and gets the next epoch, fencing the previous instance and
aborting a transaction it left open (the caller is then told CONCURRENT_TRANSACTIONS and retries);
v3+ may name the id and epoch the producer had (KIP-360). When no id can be reserved (a full disk,
kbroker.txn.producer_ids) the answer is COORDINATOR_LOAD_IN_PROGRESS, which producers retry. A
transaction timeout outside
(0, transaction.max.timeout.ms] is INVALID_TRANSACTION_TIMEOUT; before v4, PRODUCER_FENCED is
answered as INVALID_PRODUCER_EPOCH.
"""

from __future__ import annotations

from ..protocol.errors import ApiError, ErrorCode
from ..protocol.messages import InitProducerIdRequest, InitProducerIdResponse
from .registry import Handler


async def handle_init_producer_id(ctx, request: InitProducerIdRequest) -> InitProducerIdResponse:
    if request.transactional_id is None:
        try:
            producer_id = ctx.producer_ids.new_producer_id()
        except ApiError as exc:  # the block of ids could not be reserved (a full disk): retriable
            return InitProducerIdResponse(error_code=exc.error_code, producer_id=-1, producer_epoch=-1)
        return InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0)
    expected = None
    if ctx.api_version >= 3:
        given = (request.producer_id, request.producer_epoch)
        if given != (-1, -1):
            if -1 in given:
                return InitProducerIdResponse(error_code=ErrorCode.INVALID_REQUEST, producer_id=-1, producer_epoch=-1)
            expected = given
    try:
        await ctx.txns.ensure_state_topic()  # a client may come without FindCoordinator
    except ApiError as exc:  # __transaction_state cannot be created (a full disk)
        return InitProducerIdResponse(error_code=exc.error_code, producer_id=-1, producer_epoch=-1)
    error, producer_id, epoch = ctx.txns.init_producer_id(
        request.transactional_id, request.transaction_timeout_ms, expected)
    if error == ErrorCode.PRODUCER_FENCED and ctx.api_version < 4:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return InitProducerIdResponse(error_code=error, producer_id=producer_id, producer_epoch=epoch)


HANDLERS = [Handler(InitProducerIdRequest, 0, 5, handle_init_producer_id)]
