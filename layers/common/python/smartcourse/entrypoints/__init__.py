"""Entry points that are neither an HTTP function nor a CLI command: they build a container or run consumers.

`msk.py` turns a `Consumer` into a Lambda handler for an MSK event source; `kafka.py` is the Kafka side of
the relay and the consumer-group runner that `smartcourse relay` / `smartcourse consumers` start.
"""
