"""The atheris (libFuzzer) target for `decoder_fuzz.py`; run as a subprocess:

    python -m reliability.decoder_fuzz_target FINDINGS.jsonl [libFuzzer flags] CORPUS_DIR

An input is decoded as one request frame by `kbroker.protocol.codec` (header, then body), the way
the server does. Its first byte chooses how: 0 mod 4, the rest is a whole frame (any api key, any
version, any header); otherwise bytes 1-2 choose an api key and a version (one below to one above
the valid range) and the rest is the body behind a valid header of that version. Coverage of the
instrumented kbroker.protocol package guides the mutations.

Only ProtocolError or a decoded message may come out. Any other exception is written once per
(type, raising line) to FINDINGS as a JSON line with the input, and fuzzing goes on.
"""

from __future__ import annotations

import json
import struct
import sys
import traceback

import atheris

with atheris.instrument_imports(include=["kbroker.protocol"]):
    from kbroker.protocol.codec import decode_request_body, decode_request_header, request_header_version
    from kbroker.protocol.errors import ProtocolError
    from kbroker.protocol.messages import REQUESTS

    MESSAGE_CLASSES = list(REQUESTS.values())  # imports (and so instruments) every message module

API_KEYS = sorted(REQUESTS)
FINDINGS_PATH = sys.argv.pop(1)
seen: set[str] = set()


def frame_from(data: bytes) -> bytes:
    if len(data) < 3 or data[0] % 4 == 0:
        return data[1:]
    api_key = API_KEYS[data[1] % len(API_KEYS)]
    low, high = REQUESTS[api_key].VERSIONS
    version = low - 1 + data[2] % (high - low + 3)
    header = struct.pack(">hhih", api_key, version, 1, 4) + b"fuzz"
    if request_header_version(api_key, version) >= 2:
        header += b"\x00"
    return header + data[3:]


def record(data: bytes, exc: BaseException) -> None:
    where = traceback.extract_tb(exc.__traceback__)[-1]
    signature = f"{type(exc).__name__} at {where.filename.split('kbroker/')[-1]}:{where.lineno}"
    if signature in seen:
        return
    seen.add(signature)
    with open(FINDINGS_PATH, "a") as out:
        out.write(json.dumps({"signature": signature, "message": str(exc)[:300], "input": data.hex()}) + "\n")


def test_one_input(data: bytes) -> None:
    frame = frame_from(data)
    try:
        header, reader = decode_request_header(frame)
        decode_request_body(header, reader)
    except ProtocolError:
        pass
    except Exception as exc:  # the finding: anything but ProtocolError
        record(data, exc)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
