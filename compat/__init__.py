"""Compatibility harness: real clients and Apache Kafka itself, run against kbroker."""
