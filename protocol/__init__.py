"""Kafka wire schemas in kbroker's compact form, and the code generator that turns them into Python.

    python -m protocol            regenerate kbroker/protocol/messages/ from protocol/schemas/
    python -m protocol --check    exit 1 if the checked-in generated code differs from a fresh run
    python -m protocol.import_kafka DIR   (re)derive protocol/schemas/ from Kafka's JSON definitions
"""
