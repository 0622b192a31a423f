"""Fixtures that talk to a real broker: one per session, fresh topics and groups per test."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streamer import simulator
from tests import broker as broker_choice

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    with broker_choice.broker() as (servers, kind):
        print(f"\nKafka broker for tests: {kind} at {servers}")
        yield servers


@pytest.fixture(scope="session")
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


TopicFactory = Callable[..., str]


@pytest.fixture
def make_topic(admin: AdminClient) -> Iterator[TopicFactory]:
    """Create uuid-named topics; delete them after the test."""
    created: list[str] = []

    def make(prefix: str = "t", partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        for fut in admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30).values():
            fut.result()
        created.append(name)
        return name

    yield make
    if created:
        for fut in admin.delete_topics(created, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                fut.result()


@pytest.fixture
def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session", autouse=True)
def _aws_env() -> None:
    """boto3 signs every request; the simulator accepts any credentials."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "simulator")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "simulator")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def sim() -> Iterator[simulator.SimServer]:
    server = simulator.start()
    yield server
    server.shutdown()
    server.server_close()


def sim_stats(server: simulator.SimServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/_sim/stats", timeout=5) as r:
        stats: dict[str, Any] = json.load(r)
    return stats


def sim_configure(server: simulator.SimServer, **changes: Any) -> None:
    req = urllib.request.Request(
        server.url + "/_sim/config", data=json.dumps(changes).encode(), method="POST"
    )
    urllib.request.urlopen(req, timeout=5).close()
