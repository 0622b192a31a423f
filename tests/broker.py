"""Which real Kafka broker the tests use: KAFKA_BOOTSTRAP_SERVERS, else testcontainers, else a local one."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kafka"))

import local_broker  # noqa: E402


def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextmanager
def _container() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    kafka = (
        KafkaContainer("confluentinc/cp-kafka:7.7.1")
        .with_kraft()
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    with kafka:
        yield kafka.get_bootstrap_server()


@contextmanager
def _local() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="streamer-kafka-") as state:
        b = local_broker.Broker(Path(state), local_broker.free_port(), local_broker.free_port())
        took = local_broker.up(b)
        print(f"\nlocal Apache Kafka broker at {b.bootstrap} answered after {took:.1f}s", file=sys.stderr)
        try:
            yield b.bootstrap
        finally:
            local_broker.down(b)


@contextmanager
def broker() -> Iterator[tuple[str, str]]:
    """Yield (bootstrap servers, which kind of broker)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"], "KAFKA_BOOTSTRAP_SERVERS"
    elif docker_engine_answers():
        with _container() as bootstrap:
            yield bootstrap, "testcontainers"
    else:
        with _local() as bootstrap:
            yield bootstrap, "local Apache Kafka (Maven Central jars)"
