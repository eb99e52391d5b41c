"""Differential runner: the same scenario against Apache Kafka and kbroker, observations compared."""
