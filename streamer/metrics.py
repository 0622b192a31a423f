"""Prometheus metrics. Labels never carry account numbers, document ids or text."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
ACCOUNT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)


class Metrics:
    """One registry per pipeline, so tests can run several in one process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.pages_consumed = Counter(
            "streamer_pages_consumed", "Page messages read from the input topic", registry=r
        )
        self.pages_invalid = Counter(
            "streamer_pages_invalid", "Messages sent to the DLQ, by reason", ["reason"], registry=r
        )
        self.pages_duplicate = Counter(
            "streamer_pages_duplicate",
            "Pages seen before (open: account still open; finished: already published)",
            ["kind"],
            registry=r,
        )
        self.pages_skipped = Counter(
            "streamer_pages_skipped",
            "Pages skipped after a restart because their account was already published",
            registry=r,
        )
        self.accounts_open = Gauge(
            "streamer_accounts_open", "Accounts waiting for pages or extractions", registry=r
        )
        self.oldest_open_age = Gauge(
            "streamer_oldest_open_account_age_seconds", "Age of the oldest open account", registry=r
        )
        self.accounts_published = Counter(
            "streamer_accounts_published",
            "Account records acknowledged by the broker, by status",
            ["status"],
            registry=r,
        )
        self.dlq_messages = Counter(
            "streamer_dlq_messages", "Messages acknowledged on the DLQ", ["reason"], registry=r
        )
        self.llm_calls = Counter(
            "streamer_llm_calls",
            "Segments extracted, by outcome (ok or the error code)",
            ["outcome"],
            registry=r,
        )
        self.llm_latency = Histogram(
            "streamer_llm_call_duration_seconds",
            "Wall time of one batch extraction, retries included",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_retries = Counter(
            "streamer_llm_retries", "Retried Converse attempts, by error code", ["code"], registry=r
        )
        self.llm_throttles = Counter("streamer_llm_throttles", "ThrottlingException answers", registry=r)
        self.llm_in_flight = Gauge("streamer_llm_in_flight", "Batches being extracted now", registry=r)
        self.llm_limit = Gauge(
            "streamer_llm_concurrency_limit", "Current adaptive limit on calls in flight", registry=r
        )
        self.llm_tokens = Counter("streamer_llm_tokens", "Tokens, by kind", ["kind"], registry=r)
        self.llm_cost = Counter(
            "streamer_llm_cost_usd", "Cost of LLM calls in USD (known prices only)", registry=r
        )
        self.llm_cost_unknown = Counter(
            "streamer_llm_calls_unpriced", "Extractions whose model has no known price", registry=r
        )
        self.account_latency = Histogram(
            "streamer_account_latency_seconds",
            "First page seen to record acknowledged",
            buckets=ACCOUNT_BUCKETS,
            registry=r,
        )
        self.buffered_bytes = Gauge("streamer_buffered_bytes", "Page text held in memory", registry=r)
        self.ready_batches = Gauge("streamer_ready_batches", "Batches waiting for a call slot", registry=r)
        self.paused_partitions = Gauge(
            "streamer_paused_partitions", "Input partitions paused by backpressure", registry=r
        )
        self.commits = Counter("streamer_commits", "Offset commits sent", registry=r)
        self.commit_failures = Counter("streamer_commit_failures", "Offset commits that failed", registry=r)
        self.delivery_failures = Counter(
            "streamer_delivery_failures",
            "Records or DLQ messages the broker did not acknowledge",
            ["topic_kind"],
            registry=r,
        )
        self.rebalances = Counter("streamer_rebalances", "Rebalance callbacks, by kind", ["kind"], registry=r)
        self.assigned_partitions = Gauge(
            "streamer_assigned_partitions", "Input partitions assigned", registry=r
        )
        self.consumer_lag = Gauge(
            "streamer_consumer_lag",
            "Messages behind the high watermark (librdkafka stats)",
            ["topic", "partition"],
            registry=r,
        )
        self.kafka_errors = Counter(
            "streamer_kafka_errors", "Errors reported by the Kafka client", ["code"], registry=r
        )

    def update_lag(self, stats_json: str, topic: str) -> None:
        """librdkafka statistics -> consumer_lag per assigned partition."""
        stats: dict[str, Any] = json.loads(stats_json)
        for pid, p in stats.get("topics", {}).get(topic, {}).get("partitions", {}).items():
            if pid != "-1" and p.get("consumer_lag", -1) >= 0:
                self.consumer_lag.labels(topic, pid).set(p["consumer_lag"])
