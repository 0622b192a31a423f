"""Benchmark: latency of one account, makespan vs the ideal, vs the old scheduling, pages/s.

Runs against a real broker (KAFKA_BOOTSTRAP_SERVERS, else the local one from kafka/) and the
Bedrock simulator in its own process, through the real boto3 client. Prints figures and ratios
measured in this one run. `make bench` or `python bench/throughput.py --help`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kafka"))
sys.path.insert(0, str(ROOT))

import local_broker  # noqa: E402

from streamer import corpus, samples, schema  # noqa: E402
from streamer.extractor import Extractor, make_client  # noqa: E402
from streamer.pipeline import Pipeline  # noqa: E402
from streamer.pricing import PriceTable  # noqa: E402
from streamer.prompt import Page  # noqa: E402
from streamer.settings import Settings  # noqa: E402


def sim_config(url: str, **changes: object) -> None:
    req = urllib.request.Request(url + "/_sim/config", data=json.dumps(changes).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).close()


def start_sim(stack: ExitStack) -> str:
    port = local_broker.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamer", "bedrock-sim", "--port", str(port), "--latency-ms", "0"],
        stdout=subprocess.DEVNULL,
    )
    stack.callback(proc.terminate)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("simulator did not start")


def start_broker(stack: ExitStack) -> str:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-kafka-")))
    b = local_broker.Broker(state, local_broker.free_port(), local_broker.free_port())
    local_broker.up(b)
    stack.callback(local_broker.down, b)
    return b.bootstrap


def settings_for(bootstrap: str, sim_url: str, partitions: int, **over: object) -> Settings:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tag = uuid.uuid4().hex[:8]
    names = {
        "input_topic": f"bench-in-{tag}",
        "output_topic": f"bench-out-{tag}",
        "dlq_topic": f"bench-dlq-{tag}",
    }
    for fut in admin.create_topics([NewTopic(t, partitions, 1) for t in names.values()]).values():
        fut.result()
    base: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "group_id": f"bench-{tag}",
        "bedrock_endpoint_url": sim_url,
        "log_level": "WARNING",
        "idle_exit_s": 0.5,
        **names,
    }
    return Settings(**{**base, **over})  # type: ignore[arg-type]


def events_of(accounts: list[corpus.Account]) -> list[tuple[bytes | None, bytes]]:
    return [(e.account_number.encode(), e.to_json()) for a in accounts for e in a.events()]


def one_account_latency(bootstrap: str, sim_url: str, call_s: float) -> float:
    sim_config(sim_url, latency_ms=call_s * 1000)
    s = settings_for(bootstrap, sim_url, 1)
    pipeline = Pipeline.from_settings(s)
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    while not pipeline.partitions:
        time.sleep(0.05)
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    reader.subscribe([s.output_topic])
    reader.consume(1, timeout=2)  # joined before we start the clock
    account = corpus.make_account(random.Random(1), "doc-bench", "10-0000-000001", 10)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.list_topics(timeout=10)  # connected before the clock starts
    started = time.monotonic()
    for key, value in events_of([account]):
        producer.produce(s.input_topic, key=key, value=value)
    producer.flush(10)
    while not any(m.error() is None for m in reader.consume(1, timeout=0.05)):
        pass
    latency = time.monotonic() - started
    pipeline.stop()
    runner.join(30)
    reader.close()
    return latency


def makespan(
    bootstrap: str, sim_url: str, accounts: list[corpus.Account], in_flight: int, call_s: float
) -> float:
    """All pages already on the topic; from the first page read to the last record acknowledged."""
    sim_config(sim_url, latency_ms=call_s * 1000)
    s = settings_for(bootstrap, sim_url, 8, max_in_flight=in_flight, ready_queue_size=8 * in_flight)
    samples.send(s, events_of(accounts), progress=False)
    pipeline = Pipeline.from_settings(s)
    first: list[float] = []
    original = pipeline._handle

    def timed(msg: object) -> None:
        if not first:
            first.append(time.monotonic())
        original(msg)  # type: ignore[arg-type]

    pipeline._handle = timed  # type: ignore[method-assign]
    last = [0.0]
    done = threading.Event()

    def watch() -> None:
        while pipeline.summary.published < len(accounts):
            time.sleep(0.005)
        last[0] = time.monotonic()
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    pipeline.run(until_idle=True)
    done.wait(10)
    assert pipeline.summary.published == len(accounts), pipeline.summary
    return last[0] - first[0]


def old_scheduling(sim_url: str, accounts: list[corpus.Account], call_s: float) -> float:
    """The replaced design: one account at a time, batches of 2, 3 worker threads."""
    sim_config(sim_url, latency_ms=call_s * 1000)
    s = Settings(bedrock_endpoint_url=sim_url, max_in_flight=3)
    ex = Extractor(make_client(s), s, schema.load(s.extraction_schema), PriceTable())
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        for a in accounts:
            pages = [Page(e.page_index, e.page, e.text) for e in a.events()]
            list(pool.map(ex.extract, [pages[i : i + 2] for i in range(0, len(pages), 2)]))
    return time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--pages", type=int, default=10)
    ap.add_argument("--in-flight", type=int, default=32)
    ap.add_argument("--call-ms", type=float, default=200.0)
    ap.add_argument("--old-accounts", type=int, default=500, help="accounts for the old-scheduling run")
    a = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "simulator")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "simulator")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    call_s = a.call_ms / 1000
    rng = random.Random(0)
    accounts = [
        corpus.make_account(rng, f"doc-{i:05d}", f"{i:02d}-0000-{i:06d}", a.pages) for i in range(a.accounts)
    ]
    calls = a.accounts * math.ceil(a.pages / 2)
    with ExitStack() as stack:
        bootstrap = start_broker(stack)
        sim_url = start_sim(stack)
        print(f"broker {bootstrap}, simulator {sim_url}, {os.cpu_count()} cores")

        one = one_account_latency(bootstrap, sim_url, call_s)
        target_one = 1.2 * call_s + 0.3
        print(
            f"one {a.pages}-page account end to end: {one:.3f} s (target <= {target_one:.2f} s) "
            f"ratio to call latency {one / call_s:.2f}"
        )

        span = makespan(bootstrap, sim_url, accounts, a.in_flight, call_s)
        ideal = math.ceil(calls / a.in_flight) * call_s
        print(
            f"makespan {a.accounts} x {a.pages} pages ({calls} calls) at {a.in_flight} in flight, "
            f"{a.call_ms:.0f} ms calls: {span:.2f} s, ideal {ideal:.2f} s, "
            f"ratio {span / ideal:.3f} (target <= 1.15)"
        )

        old_accounts = accounts[: a.old_accounts]
        old = old_scheduling(sim_url, old_accounts, call_s) * len(accounts) / len(old_accounts)
        scaled = (
            f" (extrapolated from {len(old_accounts)} accounts)" if len(old_accounts) < len(accounts) else ""
        )
        print(
            f"old scheduling (one account at a time, batches of 2, 3 workers): {old:.2f} s"
            f"{scaled}, "
            f"speed-up {old / span:.1f}x (target >= 10x)"
        )

        zero = makespan(bootstrap, sim_url, accounts, a.in_flight, 0.0)
        print(
            f"zero-latency simulator: {a.accounts * a.pages / zero:.0f} pages/s "
            f"({calls / zero:.0f} calls/s, {zero:.2f} s for {a.accounts * a.pages} pages)"
        )


if __name__ == "__main__":
    main()
