"""The test broker is a real Kafka: keys, partitions, group offsets, metadata and transactions."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tests.integration.conftest import TopicFactory

pytestmark = pytest.mark.integration


def _consume(consumer: Consumer, n: int, timeout_s: float = 30.0) -> list[tuple[bytes, bytes, int, int]]:
    import time

    got: list[tuple[bytes, bytes, int, int]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        for m in consumer.consume(100, timeout=0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(m.error())
            got.append((m.key(), m.value(), m.partition(), m.offset()))
    return got


def _consumer(bootstrap: str, group: str, **extra: object) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **extra,
        }
    )


def test_keyed_round_trip_keeps_per_key_order(
    bootstrap: str, make_topic: TopicFactory, group_id: str
) -> None:
    topic = make_topic("keys", partitions=4)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    keys = [f"k{i}".encode() for i in range(12)]
    for seq in range(25):
        for k in keys:
            p.produce(topic, key=k, value=str(seq).encode())
    assert p.flush(30) == 0

    c = _consumer(bootstrap, group_id)
    c.subscribe([topic])
    got = _consume(c, 25 * len(keys))
    c.close()

    assert len(got) == 25 * len(keys)
    by_key: dict[bytes, list[int]] = defaultdict(list)
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    for key, value, partition, _ in got:
        by_key[key].append(int(value))
        partitions_of[key].add(partition)
    assert all(seqs == list(range(25)) for seqs in by_key.values())
    assert all(len(ps) == 1 for ps in partitions_of.values()), "a key must stay on one partition"
    assert len({p for ps in partitions_of.values() for p in ps}) > 1, "keys should spread over partitions"


def test_group_resumes_from_committed_offset_with_metadata(
    bootstrap: str, make_topic: TopicFactory, group_id: str
) -> None:
    topic = make_topic("resume")
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        p.produce(topic, value=str(i).encode())
    assert p.flush(30) == 0

    first = _consumer(bootstrap, group_id)
    first.subscribe([topic])
    got = _consume(first, 4)
    assert [int(v) for _, v, _, _ in got[:4]] == [0, 1, 2, 3]
    marker = f"done:{uuid.uuid4().hex}"
    first.commit(offsets=[TopicPartition(topic, 0, 4, marker)], asynchronous=False)
    first.close()

    second = _consumer(bootstrap, group_id)
    committed = second.committed([TopicPartition(topic, 0)], timeout=10)
    assert committed[0].offset == 4
    assert committed[0].metadata == marker
    second.subscribe([topic])
    rest = _consume(second, 6)
    second.close()
    assert [int(v) for _, v, _, _ in rest] == [4, 5, 6, 7, 8, 9]


def test_aborted_transaction_is_invisible_to_read_committed(
    bootstrap: str, make_topic: TopicFactory, group_id: str
) -> None:
    topic = make_topic("txn")
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{uuid.uuid4().hex}"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"aborted")
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, value=b"committed")
    p.commit_transaction(30)

    committed = _consumer(bootstrap, group_id, **{"isolation.level": "read_committed"})
    committed.subscribe([topic])
    seen = [v for _, v, _, _ in _consume(committed, 1)]
    # Nothing more arrives: the aborted record and the transaction markers stay hidden.
    seen += [v for _, v, _, _ in _consume(committed, 1, timeout_s=2)]
    committed.close()
    assert seen == [b"committed"]

    uncommitted = _consumer(bootstrap, group_id + "-u", **{"isolation.level": "read_uncommitted"})
    uncommitted.subscribe([topic])
    raw = [v for _, v, _, _ in _consume(uncommitted, 2)]
    uncommitted.close()
    assert raw == [b"aborted", b"committed"]
