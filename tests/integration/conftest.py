"""Fixtures that talk to a real broker: one per session, fresh topics and groups per test."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient, NewTopic

from streamer import simulator
from streamer.pipeline import Pipeline
from streamer.settings import Settings
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


def _sim_post(server: simulator.SimServer, path: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).close()


def sim_reset(server: simulator.SimServer) -> None:
    _sim_post(server, "/_sim/reset", {})


def spawn_run(s: Settings, **popen: Any) -> subprocess.Popen[str]:
    """`streamer run` in its own process with these settings as STREAMER_* variables."""
    return subprocess.Popen([sys.executable, "-m", "streamer", "run"], env=env_of(s), text=True, **popen)


def sim_configure(server: simulator.SimServer, **changes: Any) -> None:
    _sim_post(server, "/_sim/config", changes)


@dataclass
class Topics:
    input: str
    output: str
    dlq: str


@pytest.fixture
def topics(make_topic: TopicFactory) -> Topics:
    return Topics(make_topic("pages", 4), make_topic("records", 2), make_topic("dlq", 1))


def pipeline_settings(bootstrap: str, t: Topics, group: str, sim_url: str, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "input_topic": t.input,
        "output_topic": t.output,
        "dlq_topic": t.dlq,
        "group_id": group,
        "bedrock_endpoint_url": sim_url,
        "bedrock_backoff_base_s": 0.02,
        "bedrock_backoff_max_s": 0.2,
        "commit_interval_s": 0.2,
        "idle_exit_s": 1.0,
        # A killed member leaves the group after this; the broker's minimum is 6 s.
        "kafka": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
    }
    return Settings(**{**base, **over})


def env_of(s: Settings) -> dict[str, str]:
    """The same settings as STREAMER_* variables, for a `streamer run` subprocess."""
    out = dict(os.environ)
    for name, value in s.model_dump(exclude_defaults=True, exclude={"kafka"}).items():
        out[f"STREAMER_{name.upper()}"] = json.dumps(value) if isinstance(value, dict) else str(value)
    for prop, secret in s.kafka.items():
        out[f"STREAMER_KAFKA_{prop.upper().replace('.', '_')}"] = secret.get_secret_value()
    return out


def read_topic(
    bootstrap: str, topic: str, expect: int, timeout_s: float = 30.0, settle_s: float = 1.0
) -> list[Message]:
    """Every message of a topic, waiting until `expect` arrived and then `settle_s` more for extras."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    c.subscribe([topic])
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    quiet_until: float | None = None
    while time.monotonic() < deadline:
        batch = [m for m in c.consume(200, timeout=0.2) if m.error() is None]
        got += batch
        if len(got) >= expect:
            quiet_until = quiet_until or time.monotonic() + settle_s
            if time.monotonic() >= quiet_until:
                break
    c.close()
    return got


def records(messages: list[Message]) -> list[dict[str, Any]]:
    return [json.loads(m.value()) for m in messages]


def run_until_idle(s: Settings) -> Pipeline:
    p = Pipeline.from_settings(s)
    assert p.run(until_idle=True) == 0
    return p
