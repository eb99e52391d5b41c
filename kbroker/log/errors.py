"""What the log raises when its storage fails.

An ``OSError`` from the file system while appending (the write of the batches, a segment roll, an
index or transaction-index write, the leader-epoch checkpoint, a flush the append asks for) leaves
the log as ``StorageError``, an ApiError with KAFKA_STORAGE_ERROR: the Produce handler answers that
code for the one partition, as Kafka does, and the broker keeps serving the others. What the log's
state is after such a failure is the log's business (kbroker.log.base): the append either left no
trace, or the log refuses further appends until it is reopened.

``TornWrite`` is the file-level case that forces the second outcome: a write failed part way and its
partial bytes could not be truncated away either, so the file holds garbage after its last whole
batch (recovery removes it at the next open).
"""

from __future__ import annotations

from kbroker.protocol.errors import ApiError, ErrorCode


class StorageError(ApiError):
    """The log's storage failed (disk full, I/O error): KAFKA_STORAGE_ERROR for this partition."""

    def __init__(self, message: str):
        super().__init__(ErrorCode.KAFKA_STORAGE_ERROR, message)


class TornWrite(OSError):
    """A failed write left partial bytes at the end of a file that could not be truncated back."""


class RecordsRejected(ApiError):
    """Records of a batch were refused one by one (Kafka's RecordValidationException): the error
    code, Kafka's summary message, and (batch index, message) for each refused record."""

    def __init__(self, error_code: ErrorCode, message: str, record_errors: list[tuple[int, str]]):
        super().__init__(error_code, message, record_index=record_errors[0][0] if record_errors else None)
        self.record_errors = record_errors
