"""The poll loop: the one thread that owns the consumer, the producer and all state.

Flow per iteration: consume -> decode -> assemble -> results from workers -> dispatch ready
batches within the adaptive limit -> expire -> serve delivery reports -> commit -> backpressure.
At least once: an offset is committed only when its page's effect (record or DLQ entry) was
acknowledged, and offsets finished above the commit point ride in the commit metadata.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from streamer import kafka_config, offsets
from streamer import schema as schema_module
from streamer.assembler import Account, AccountKey, Assembler, Batch, PartitionKey, Position, Verdict
from streamer.dlq import DlqHeaders
from streamer.events import InvalidEvent, Reason, decode
from streamer.executor import AdaptiveLimit, Done, Executor
from streamer.extraction import Extraction
from streamer.extractor import Extractor, make_client
from streamer.health import Health
from streamer.merge import build_record
from streamer.metrics import Metrics
from streamer.offsets import PartitionOffsets
from streamer.pricing import PriceTable
from streamer.record import AccountRecord
from streamer.schema import ExtractionSchema
from streamer.settings import ConfigError, Settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_CONFIG, EXIT_UNREACHABLE, EXIT_FATAL = 0, 2, 3, 4
HOUSEKEEPING_S = 0.25  # how often timeouts and gauges are looked at


class StartupError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Summary:
    """What one run did; the demo and benchmarks print it."""

    pages: int = 0
    invalid: int = 0
    duplicates: int = 0
    skipped: int = 0
    published: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    account_latencies: list[float] = field(default_factory=list)
    last_record: AccountRecord | None = None


def check_broker(s: Settings, timeout_s: float = 10.0) -> None:
    """Fail fast with one clear message: unreachable broker or missing topics."""
    admin = AdminClient({**kafka_config.admin(s), "log_level": 0})
    try:
        md = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise StartupError(
            f"cannot reach Kafka at {s.bootstrap_servers}: {exc.args[0]}", EXIT_UNREACHABLE
        ) from None
    missing = [t for t in (s.input_topic, s.output_topic, s.dlq_topic) if t not in md.topics]
    if missing:
        raise StartupError(
            f"topics missing: {', '.join(missing)} (create them: streamer topics create)", EXIT_CONFIG
        )


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        extractor: Extractor,
        schema: ExtractionSchema,
        metrics: Metrics | None = None,
        health: Health | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.s = settings
        self.schema = schema
        self.metrics = metrics or Metrics()
        self.health = health or Health(settings.healthz_max_loop_age_s)
        self.clock = clock
        self.assembler = Assembler(
            settings.batch_max_pages,
            settings.batch_max_tokens,
            settings.completion_timeout_s,
            settings.finished_window,
        )
        self.executor = Executor(extractor, settings.max_in_flight)
        self.limit = AdaptiveLimit(settings.max_in_flight)
        self.ready: deque[Batch] = deque()
        self.partitions: dict[PartitionKey, PartitionOffsets] = {}
        self.paused = False
        self.stopping = False
        self.fatal: str | None = None
        self.summary = Summary()
        self.wall_started: dict[AccountKey, datetime] = {}  # first page, wall clock, for the record
        self.last_message_at = clock()
        self.last_commit = clock()
        self.last_housekeeping = clock()
        self.consumer = Consumer(
            {**kafka_config.consumer(settings), "stats_cb": self._stats, "error_cb": self._kafka_error}
        )
        self.producer = Producer({**kafka_config.producer(settings), "error_cb": self._kafka_error})

    @classmethod
    def from_settings(
        cls, s: Settings, metrics: Metrics | None = None, health: Health | None = None
    ) -> Pipeline:
        """Schema, prices, boto3 client and extractor from settings; bad ones raise ConfigError."""
        try:
            extraction_schema = schema_module.load(s.extraction_schema)
            prices = PriceTable.with_overrides(s.prices)
        except ValueError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from None
        extractor = Extractor(make_client(s), s, extraction_schema, prices)
        return cls(s, extractor, extraction_schema, metrics, health)

    # ---- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """First SIGTERM/Ctrl-C: stop intake and drain. The CLI exits at once on a second."""
        self.stopping = True
        self.health.stopping = True

    def run(self, until_idle: bool = False) -> int:
        self.consumer.subscribe(
            [self.s.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info("consuming", extra={"topic": self.s.input_topic, "group": self.s.group_id})
        try:
            while not self.stopping and self.fatal is None:
                self._iteration()
                if until_idle and self._idle():
                    log.info("input drained and nothing open: exiting")
                    break
            return self._shutdown()
        finally:
            self.executor.shutdown(wait=False)

    def _iteration(self) -> None:
        self.health.beat()
        busy = self.executor.in_flight or self.ready
        for msg in self.consumer.consume(num_messages=500, timeout=0.005 if busy else 0.1):
            self._handle(msg)
        self._collect(timeout=None)
        self._dispatch()
        self.producer.poll(0)
        self._commit_if_due()
        self._backpressure()
        if self.clock() - self.last_housekeeping >= HOUSEKEEPING_S:  # both walk every open account
            self.last_housekeeping = self.clock()
            self._expire()
            self._gauges()

    def _shutdown(self) -> int:
        """Stop intake, wait for in-flight calls up to the grace, publish what completed, commit, close."""
        self.health.stopping = True
        if self.partitions:
            self._pause(True)
        deadline = self.clock() + self.s.shutdown_grace_s
        self.ready.clear()
        while self.executor.in_flight and self.clock() < deadline and self.fatal is None:
            self.consumer.consume(num_messages=100, timeout=0.01)  # stays in the group; partitions paused
            self._collect(timeout=0.05)
            self.producer.poll(0)
        if self.executor.in_flight:
            log.warning(
                "grace period over with calls in flight", extra={"in_flight": self.executor.in_flight}
            )
        self.producer.flush(30)
        if self.fatal is None:
            self._commit(list(self.partitions), asynchronous=False)
        self.consumer.close()
        log.info("stopped", extra={"published": self.summary.published, "fatal": self.fatal})
        return EXIT_FATAL if self.fatal else EXIT_OK

    def _idle(self) -> bool:
        now = self.clock()
        if now - self.last_message_at < self.s.idle_exit_s or not self.partitions:
            return False
        if self.assembler.open or self.executor.in_flight or self.ready or len(self.producer):
            return False
        for (topic, partition), po in self.partitions.items():
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
            if po.next < high:
                return False
        self._commit(list(self.partitions), asynchronous=False)
        return True

    # ---- intake ------------------------------------------------------------------------------

    def _handle(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                self._kafka_error(err)
            return
        pos = Position(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
        po = self.partitions.get(pos.tp)
        if po is None:  # a message of a partition revoked meanwhile
            return
        self.last_message_at = self.clock()
        self.metrics.pages_consumed.inc()
        self.summary.pages += 1
        if po.already_done(pos.offset):
            self.metrics.pages_skipped.inc()
            self.summary.skipped += 1
            return
        po.received(pos.offset)
        try:
            event = decode(msg.key(), msg.value(), self.s.max_page_bytes)
        except InvalidEvent as bad:
            self._dead_letter(msg, pos, bad.reason, bad.detail)
            return
        verdict, batches = self.assembler.add(event, pos, self.clock())
        if verdict is Verdict.CONTRADICTION:
            self._dead_letter(
                msg, pos, Reason.CONTRADICTION, "page_count differs from earlier pages of this account"
            )
            return
        if verdict in (Verdict.DUPLICATE, Verdict.LATE_DUPLICATE):
            kind = "open" if verdict is Verdict.DUPLICATE else "finished"
            self.metrics.pages_duplicate.labels(kind).inc()
            self.summary.duplicates += 1
            log.info(
                "duplicate page",
                extra={"topic": pos.topic, "partition": pos.partition, "offset": pos.offset, "kind": kind},
            )
            po.done(pos.offset)
            return
        key = (event.document_id, event.account_number)
        self.wall_started.setdefault(key, datetime.now(UTC))
        self.ready.extend(batches)

    def _dead_letter(self, msg: Message, pos: Position, reason: Reason, detail: str) -> None:
        self.metrics.pages_invalid.labels(reason.value).inc()
        self.summary.invalid += 1
        log.warning(
            "invalid page event to the DLQ",
            extra={
                "topic": pos.topic,
                "partition": pos.partition,
                "offset": pos.offset,
                "reason": reason.value,
                "detail": detail,
            },
        )
        headers = DlqHeaders(
            error=reason.value,
            reason=detail,
            source_topic=pos.topic,
            source_partition=pos.partition,
            source_offset=pos.offset,
        )

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._delivery_failed("dlq", err)
                return
            self.metrics.dlq_messages.labels(reason.value).inc()
            self._done([pos])

        self._produce(self.s.dlq_topic, msg.key(), msg.value(), headers.to_kafka(), delivered)

    # ---- extraction --------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self.ready and self.executor.in_flight < self.limit.current:
            self.executor.submit(self.ready.popleft())

    def _collect(self, timeout: float | None) -> None:
        while (event := self.executor.take(timeout)) is not None:
            timeout = None
            if not isinstance(event, Done):
                self.metrics.llm_throttles.inc()
                self.limit.throttled(self.clock())
                continue
            x = event.extraction
            self._count_extraction(x)
            if all(seg.error is None for seg in x.segments) and not x.retries.get("ThrottlingException"):
                self.limit.succeeded()
            acc = self.assembler.result(event.batch, x)
            if acc is not None:
                self._publish(acc)

    def _count_extraction(self, x: Extraction) -> None:
        m = self.metrics
        m.llm_latency.observe(x.latency_s)
        for seg in x.segments:
            m.llm_calls.labels(seg.error or "ok").inc()
            if seg.error:
                log.warning(
                    "extraction failed",
                    extra={"error": seg.error, "reason": seg.reason, "pages": len(seg.pages)},
                )
        for code, n in x.retries.items():
            m.llm_retries.labels(code).inc(n)
        for kind, n in x.usage.model_dump().items():
            m.llm_tokens.labels(kind.removesuffix("_tokens")).inc(n)
        if x.cost_usd is None:
            m.llm_cost_unknown.inc()
        else:
            m.llm_cost.inc(x.cost_usd)
        self.summary.llm_calls += x.calls
        self.summary.input_tokens += x.usage.input_tokens
        self.summary.output_tokens += x.usage.output_tokens
        self.summary.cost_usd += x.cost_usd or 0.0

    def _expire(self) -> None:
        batches, settled = self.assembler.expire(self.clock())
        self.ready.extend(batches)
        for acc in settled:
            self._publish(acc)

    # ---- output ------------------------------------------------------------------------------

    def _publish(self, acc: Account) -> None:
        first_page_at = self.wall_started.pop(acc.key, datetime.now(UTC))
        started = acc.first_seen
        record = build_record(acc, self.schema, self.s.bedrock_model_id, datetime.now(UTC), first_page_at)
        positions = list(acc.positions)

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._delivery_failed("output", err)
                return
            latency = self.clock() - started
            self.metrics.accounts_published.labels(record.status.value).inc()
            self.metrics.account_latency.observe(latency)
            s = self.summary
            s.published += 1
            s.by_status[record.status.value] = s.by_status.get(record.status.value, 0) + 1
            s.account_latencies.append(latency)
            best = s.last_record
            if best is None or (record.status == "complete", record.page_count) >= (
                best.status == "complete",
                best.page_count,
            ):
                s.last_record = record  # the demo shows one: prefer complete, then long
            first = positions[0]
            log.info(
                "account published",
                extra={
                    "topic": first.topic,
                    "partition": first.partition,
                    "offset": first.offset,
                    "status": record.status.value,
                    "pages": record.pages_received,
                    "latency_s": round(latency, 3),
                },
            )
            self._done(positions)

        self._produce(self.s.output_topic, acc.key[1].encode(), record.to_json(), None, delivered)

    def _produce(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any, cb: Callable[..., None]
    ) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, headers=headers, on_delivery=cb)
                return
            except BufferError:  # local queue full: serve delivery reports, then try again
                self.producer.poll(0.1)

    def _delivery_failed(self, kind: str, err: KafkaError) -> None:
        self.metrics.delivery_failures.labels(kind).inc()
        log.error(
            "broker did not acknowledge a %s message; stopping without committing it",
            kind,
            extra={"error": str(err)},
        )
        self.fatal = f"delivery failed: {err}"

    def _done(self, positions: list[Position]) -> None:
        for p in positions:
            po = self.partitions.get(p.tp)
            if po is not None:
                po.done(p.offset)

    # ---- offsets and rebalancing --------------------------------------------------------------

    def _commit_if_due(self) -> None:
        if self.clock() - self.last_commit >= self.s.commit_interval_s:
            self.last_commit = self.clock()
            self._commit(list(self.partitions), asynchronous=True)

    def _commit(self, tps: list[PartitionKey], asynchronous: bool) -> None:
        offsets_out = []
        for tp in tps:
            po = self.partitions.get(tp)
            if po is not None and po.needs_commit():
                offset, meta = po.committable(), po.metadata()
                offsets_out.append(TopicPartition(tp[0], tp[1], offset, meta))
                po.mark_committed(offset, meta)
        if not offsets_out:
            return
        try:
            if asynchronous:
                self.consumer.commit(offsets=offsets_out, asynchronous=True)
            else:
                self.consumer.commit(offsets=offsets_out, asynchronous=False)
            self.metrics.commits.inc()
        except KafkaException as exc:
            self.metrics.commit_failures.inc()
            log.warning("commit failed", extra={"error": str(exc.args[0])})
            for failed in offsets_out:  # try again next time
                self.partitions[(failed.topic, failed.partition)].mark_committed(-1, "")

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("assign").inc()
        if not partitions:
            return
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            base = tp.offset if tp.offset >= 0 else 0
            po = PartitionOffsets(base, offsets.decode(base, tp.metadata))
            po.mark_committed(tp.offset, tp.metadata or "")
            self.partitions[(tp.topic, tp.partition)] = po
            log.info(
                "partition assigned",
                extra={
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": tp.offset,
                    "done_above": len(po.done_above),
                },
            )
        if self.paused:
            consumer.pause(partitions)
        self.health.assigned = True

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("revoke").inc()
        gone = [(tp.topic, tp.partition) for tp in partitions]
        self.producer.flush(10)  # acknowledgements first, so the commit covers them
        self._commit(gone, asynchronous=False)
        self._forget(set(gone))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("lost").inc()
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _forget(self, gone: set[PartitionKey]) -> None:
        dropped = self.assembler.drop(gone)
        dropped_keys = {a.key for a in dropped}
        self.ready = deque(b for b in self.ready if b.key not in dropped_keys)
        for key in dropped_keys:
            self.wall_started.pop(key, None)
        for tp in gone:
            self.partitions.pop(tp, None)
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(tp[0], str(tp[1]))
        self.health.assigned = bool(self.partitions)
        log.info("partitions released", extra={"partitions": len(gone), "accounts_dropped": len(dropped)})

    # ---- backpressure, gauges, callbacks -----------------------------------------------------

    def _backpressure(self) -> None:
        over = (
            len(self.ready) >= self.s.ready_queue_size
            or self.assembler.buffered_bytes >= self.s.max_buffered_bytes
        )
        under = (
            len(self.ready) <= self.s.ready_queue_size // 2
            and self.assembler.buffered_bytes <= self.s.max_buffered_bytes * 0.8
        )
        if over and not self.paused:
            self._pause(True)
        elif under and self.paused and not self.stopping:
            self._pause(False)

    def _pause(self, pause: bool) -> None:
        tps = [TopicPartition(t, p) for t, p in self.partitions]
        if tps:
            (self.consumer.pause if pause else self.consumer.resume)(tps)
        self.paused = pause
        log.info(
            "intake paused" if pause else "intake resumed",
            extra={"ready": len(self.ready), "buffered_bytes": self.assembler.buffered_bytes},
        )

    def _gauges(self) -> None:
        m = self.metrics
        m.accounts_open.set(len(self.assembler.open))
        oldest = self.assembler.oldest_first_seen()
        m.oldest_open_age.set(0 if oldest is None else self.clock() - oldest)
        m.llm_in_flight.set(self.executor.in_flight)
        m.llm_limit.set(self.limit.current)
        m.buffered_bytes.set(self.assembler.buffered_bytes)
        m.ready_batches.set(len(self.ready))
        m.paused_partitions.set(len(self.partitions) if self.paused else 0)
        m.assigned_partitions.set(len(self.partitions))

    def _stats(self, stats_json: str) -> None:
        self.metrics.update_lag(stats_json, self.s.input_topic)

    def _kafka_error(self, err: KafkaError) -> None:
        self.metrics.kafka_errors.labels(err.name()).inc()
        log.warning("kafka client error", extra={"code": err.name(), "error": err.str()})
        if err.fatal():
            self.fatal = f"fatal Kafka error: {err.str()}"
