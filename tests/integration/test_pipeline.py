"""`streamer run` end to end: real broker, real boto3 over HTTP, the simulator."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamer import corpus, offsets, samples, simulator
from streamer.dlq import DlqHeaders
from streamer.pipeline import Pipeline
from streamer.settings import Settings
from tests.integration.conftest import (
    Topics,
    pipeline_settings,
    read_topic,
    records,
    run_until_idle,
    sim_configure,
    sim_reset,
    sim_stats,
    spawn_run,
)

pytestmark = pytest.mark.integration


def send_accounts(s: Settings, accounts: list[corpus.Account], seed: int = 0) -> int:
    events = corpus.interleave(accounts, seed=seed)
    return samples.send(s, [(e.account_number.encode(), e.to_json()) for e in events], progress=False)


def by_account(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["account_number"]: r for r in recs}


def test_every_account_published_once_with_ground_truth(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    accounts = corpus.generate(12, seed=5)
    s = pipeline_settings(bootstrap, topics, group_id, sim.url)
    send_accounts(s, accounts)
    p = run_until_idle(s)
    recs = records(read_topic(bootstrap, topics.output, len(accounts)))
    assert Counter(r["account_number"] for r in recs) == Counter(a.account_number for a in accounts)
    got = by_account(recs)
    for a in accounts:
        r = got[a.account_number]
        assert r["status"] == "complete" and r["document_id"] == a.document_id
        assert r["fields"] == a.expected_fields()
        assert r["checks"]["balance"]["ok"] is True
        assert r["llm"]["calls"] == (len(a.pages) + 1) // 2  # pairs of pages in order
        assert r["llm"]["cost_usd"] > 0
    stats = sim_stats(sim)
    assert stats["pages_extracted"] == sum(len(a.pages) for a in accounts)
    assert p.summary.published == len(accounts) and p.summary.invalid == 0


def test_out_of_order_and_duplicate_pages(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    accounts = corpus.generate(4, seed=9, pages_per_account=(3, 6))
    events = [e for a in accounts for e in a.events()]
    random.Random(1).shuffle(events)
    events += events[:5]  # five pages twice, some after their account is published
    s = pipeline_settings(bootstrap, topics, group_id, sim.url)
    samples.send(s, [(e.account_number.encode(), e.to_json()) for e in events], progress=False)
    p = run_until_idle(s)
    recs = records(read_topic(bootstrap, topics.output, len(accounts)))
    assert len(recs) == len(accounts)
    got = by_account(recs)
    assert all(got[a.account_number]["fields"] == a.expected_fields() for a in accounts)
    assert p.summary.duplicates == 5
    assert sim_stats(sim)["pages_extracted"] == sum(len(a.pages) for a in accounts)


def test_invalid_messages_go_to_the_dlq_and_the_run_goes_on(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    sample = samples.synthetic(3, seed=3, invalid=3)
    contradiction = sample.accounts[0].events()[0].model_copy(update={"page_count": 99})
    bad_key = b"\xff\xfe"
    messages = [
        *sample.messages,
        (contradiction.account_number.encode(), contradiction.to_json()),
        (bad_key, b"\x00"),
    ]
    s = pipeline_settings(bootstrap, topics, group_id, sim.url)
    samples.send(s, messages, progress=False)
    run_until_idle(s)
    dlq = read_topic(bootstrap, topics.dlq, 5)
    reasons = Counter(DlqHeaders.from_kafka(m.headers()).error for m in dlq)
    assert reasons == {
        "not_json": 2,
        "page_index_out_of_range": 1,
        "key_mismatch": 1,
        "contradicts_earlier_pages": 1,
    }
    originals = {(k, v) for k, v in messages}
    for m in dlq:
        h = DlqHeaders.from_kafka(m.headers())
        assert (m.key(), m.value()) in originals and h.source_topic == topics.input and h.reason
    recs = records(read_topic(bootstrap, topics.output, len(sample.accounts)))
    assert {r["account_number"] for r in recs} == {a.account_number for a in sample.accounts}


def test_failed_batch_makes_a_partial_record_with_the_reason(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    accounts = corpus.generate(3, seed=11, accounts_per_document=(1, 1), pages_per_account=(2, 2))
    sim_configure(sim, script=["access_denied"])
    s = pipeline_settings(bootstrap, topics, group_id, sim.url, max_in_flight=1)
    send_accounts(s, accounts)
    run_until_idle(s)
    recs = records(read_topic(bootstrap, topics.output, len(accounts)))
    statuses = Counter(r["status"] for r in recs)
    assert statuses == {"partial": 1, "complete": 2}
    (partial,) = [r for r in recs if r["status"] == "partial"]
    assert partial["failed_pages"] and partial["failures"][0]["error"] == "AccessDeniedException"
    assert "not retryable" in partial["failures"][0]["reason"]


def test_straggler_becomes_incomplete(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    sample = samples.synthetic(2, seed=4, straggler=True, pages_per_account=(2, 4))
    assert sample.straggler is not None
    s = pipeline_settings(bootstrap, topics, group_id, sim.url, completion_timeout_s=1.5)
    samples.send(s, sample.messages, progress=False)
    run_until_idle(s)
    got = by_account(records(read_topic(bootstrap, topics.output, len(sample.accounts))))
    late = got[sample.straggler.account_number]
    assert late["status"] == "incomplete"
    assert late["missing_pages"] == [len(sample.straggler.pages)]
    assert late["pages_received"] == len(sample.straggler.pages) - 1
    assert all(r["status"] == "complete" for k, r in got.items() if k != sample.straggler.account_number)


def _input_offsets(bootstrap: str, topic: str, n: int) -> dict[tuple[int, int], str]:
    """(partition, offset) -> account number of every input message."""
    return {
        (m.partition(), m.offset()): m.key().decode() for m in read_topic(bootstrap, topic, n, settle_s=0.2)
    }


def _durably_done(bootstrap: str, s: Settings, partitions: int) -> set[tuple[int, int]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": s.group_id})
    committed = c.committed([TopicPartition(s.input_topic, p) for p in range(partitions)], timeout=10)
    c.close()
    done: set[tuple[int, int]] = set()
    for tp in committed:
        base = max(tp.offset, 0)
        done |= {(tp.partition, o) for o in range(base)}
        done |= {(tp.partition, o) for o in offsets.decode(base, tp.metadata)}
    return done


def test_kill_9_loses_nothing_and_does_not_extract_published_accounts_again(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    accounts = corpus.generate(30, seed=21, accounts_per_document=(1, 2), pages_per_account=(1, 4))
    sim_configure(sim, latency_ms=150)
    s = pipeline_settings(bootstrap, topics, group_id, sim.url, max_in_flight=4, commit_interval_s=0.1)
    n = send_accounts(s, accounts)
    proc = spawn_run(s, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(read_topic(bootstrap, topics.output, 10**9, timeout_s=0.5)) < len(accounts) // 3:
            assert time.monotonic() < deadline and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    before = records(read_topic(bootstrap, topics.output, 0, timeout_s=2))
    assert 0 < len(before) < len(accounts), "the kill should land mid-run"

    where = _input_offsets(bootstrap, topics.input, n)
    done = _durably_done(bootstrap, s, 4)
    pages_of: dict[str, set[tuple[int, int]]] = {}
    for po, acct in where.items():
        pages_of.setdefault(acct, set()).add(po)
    safe = {acct for acct, pos in pages_of.items() if pos <= done}
    assert safe, "some accounts should be durably finished before the kill"
    assert safe <= {r["account_number"] for r in before}

    sim_reset(sim)
    run_until_idle(s.model_copy(update={"max_in_flight": 8}))
    after = records(read_topic(bootstrap, topics.output, len(accounts) + len(before)))
    assert {r["account_number"] for r in after} == {a.account_number for a in accounts}, "no account lost"
    again = set(sim_stats(sim)["by_account"])
    assert not (again & safe), "published and committed accounts must not be extracted again"
    counts = Counter(r["account_number"] for r in after)
    assert all(counts[a] == 1 for a in safe)


def test_two_consumers_in_one_group_share_the_partitions(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    accounts = corpus.generate(16, seed=8, accounts_per_document=(1, 1), pages_per_account=(2, 3))
    sim_configure(sim, latency_ms=100)
    s = pipeline_settings(bootstrap, topics, group_id, sim.url, idle_exit_s=3.0)
    pipes = [Pipeline.from_settings(s) for _ in range(2)]
    codes: list[int] = []
    threads = [threading.Thread(target=lambda p=p: codes.append(p.run(until_idle=True))) for p in pipes]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while not all(p.partitions for p in pipes) or sum(len(p.partitions) for p in pipes) != 4:
        assert time.monotonic() < deadline, "both consumers should get partitions"
        time.sleep(0.1)
    owned = [set(p.partitions) for p in pipes]
    assert not (owned[0] & owned[1])
    send_accounts(s, accounts)
    for t in threads:
        t.join(60)
    assert codes == [0, 0]
    recs = records(read_topic(bootstrap, topics.output, len(accounts)))
    assert Counter(r["account_number"] for r in recs) == Counter(a.account_number for a in accounts)
    assert all(p.summary.published > 0 for p in pipes)


def test_sigterm_drains_in_flight_calls_and_commits(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    accounts = corpus.generate(20, seed=13, accounts_per_document=(1, 1), pages_per_account=(2, 2))
    sim_configure(sim, latency_ms=600)
    s = pipeline_settings(bootstrap, topics, group_id, sim.url, max_in_flight=4, shutdown_grace_s=20)
    send_accounts(s, accounts)
    proc = spawn_run(s, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while sim_stats(sim)["in_flight"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0
    stats = sim_stats(sim)
    assert stats["in_flight"] == 0 and stats["ok"] == stats["calls"] >= 1, "in-flight calls were awaited"
    first = records(read_topic(bootstrap, topics.output, stats["ok"], timeout_s=5))
    assert first, "what completed during the drain was published"
    assert any(json.loads(line).get("msg") == "stopped" for line in out.splitlines() if line.startswith("{"))

    run_until_idle(s.model_copy(update={"shutdown_grace_s": 30.0}))
    recs = records(read_topic(bootstrap, topics.output, len(accounts)))
    counts = Counter(r["account_number"] for r in recs)
    assert set(counts) == {a.account_number for a in accounts}
    assert all(c == 1 for c in counts.values()), "drained work was committed, not redone"
