"""Create the input, output and dead-letter topics."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streamer import kafka_config
from streamer.settings import Settings


def create(s: Settings, partitions: int, replication: int) -> dict[str, str]:
    """Topic -> "created" or "exists"; other failures raise."""
    admin = AdminClient(kafka_config.admin(s))
    wanted = {
        s.input_topic: {},
        s.output_topic: {"cleanup.policy": "delete"},
        s.dlq_topic: {"retention.ms": str(30 * 24 * 3600 * 1000)},
    }
    futures = admin.create_topics(
        [NewTopic(t, partitions, replication, config=c) for t, c in wanted.items()], operation_timeout=30
    )
    out = {}
    for topic, fut in futures.items():
        try:
            fut.result()
            out[topic] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            out[topic] = "exists"
    return out
