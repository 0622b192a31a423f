"""Settings -> librdkafka configuration dicts for the consumer, the producer and the admin client."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from streamer.settings import Settings

Config = dict[str, Any]


def msk_iam_token(region: str) -> Callable[[Any], tuple[str, float]]:
    """An oauth_cb that signs an MSK IAM token with the default AWS credential chain."""

    def oauth_cb(_config: Any) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000

    return oauth_cb


def common(s: Settings) -> Config:
    conf: Config = {"bootstrap.servers": s.bootstrap_servers, "security.protocol": s.security_protocol}
    if s.ssl_ca_location:
        conf["ssl.ca.location"] = s.ssl_ca_location
    if s.sasl_mechanism == "AWS_MSK_IAM":
        region = s.msk_iam_region or s.bedrock_region or os.environ.get("AWS_REGION") or "us-east-1"
        conf["sasl.mechanism"] = "OAUTHBEARER"
        conf["oauth_cb"] = msk_iam_token(region)
    elif s.sasl_mechanism:
        conf["sasl.mechanism"] = s.sasl_mechanism
        conf["sasl.username"] = s.sasl_username
        conf["sasl.password"] = s.sasl_password.get_secret_value() if s.sasl_password else None
    # User pass-through wins: it is the escape hatch for anything not modelled above.
    conf.update({k: v.get_secret_value() for k, v in s.kafka.items()})
    return conf


def consumer(s: Settings) -> Config:
    conf = {
        "group.id": s.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "statistics.interval.ms": 5000,
        "max.poll.interval.ms": 300_000,
        # Shorter broker waits: a resumed partition is fetched sooner (553 -> 808 pages/s in bench/).
        "fetch.wait.max.ms": 100,
    }
    if s.group_protocol == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["partition.assignment.strategy"] = "cooperative-sticky"
    return {**conf, **common(s)}


def producer(s: Settings) -> Config:
    conf = {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": 120_000,
    }
    return {**conf, **common(s)}


def admin(s: Settings) -> Config:
    return common(s)


def redacted(conf: Config) -> Config:
    """A copy safe to log: secrets and callbacks masked."""
    secret = ("password", "secret", "key", "token", "jaas", "oauth_cb")
    return {k: "**********" if any(w in k for w in secret) else v for k, v in conf.items()}
