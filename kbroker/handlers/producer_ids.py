"""InitProducerId (key 22), versions 0-5: a producer id and epoch for an idempotent producer.

Java producers enable idempotence by default, so every one of them calls this first; aiokafka only
knows v0. A producer without a transactional id gets a fresh id with epoch 0 each time (as Kafka
does). A transactional id keeps its producer id and gets the next epoch; a transaction timeout
above transaction.max.timeout.ms is INVALID_TRANSACTION_TIMEOUT.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from ..protocol.messages import InitProducerIdRequest, InitProducerIdResponse
from .registry import Handler


async def handle_init_producer_id(ctx, request: InitProducerIdRequest) -> InitProducerIdResponse:
    broker = ctx.broker
    if request.transactional_id is None:
        return InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=broker.producer_ids.new_producer_id(),
                                      producer_epoch=0)
    if not 0 < request.transaction_timeout_ms <= broker.config.transaction_max_timeout_ms:
        return InitProducerIdResponse(error_code=ErrorCode.INVALID_TRANSACTION_TIMEOUT, producer_epoch=-1)
    producer_id, epoch = broker.producer_ids.init_transactional(request.transactional_id)
    return InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=epoch)


HANDLERS = [Handler(InitProducerIdRequest, 0, 5, handle_init_producer_id)]
