"""Apache Kafka (jars from Maven Central) as a test oracle for kbroker; see oracle.py and README.md."""
from .oracle import (KAFKA_VERSION, TOOLS, KafkaBroker, KafkaError, api_versions, install,
                     run_tool, start_kafka, tool_command)

__all__ = ["KAFKA_VERSION", "TOOLS", "KafkaBroker", "KafkaError", "api_versions", "install",
           "run_tool", "start_kafka", "tool_command"]
