"""Metrics, health endpoints and logs of a running pipeline; no page text or account number leaks."""

from __future__ import annotations

import io
import threading
import time
import urllib.error
import urllib.request

import pytest

from streamer import logs, samples, simulator
from streamer.health import Health, serve
from streamer.metrics import Metrics
from streamer.pipeline import Pipeline
from tests.integration.conftest import Topics, pipeline_settings, read_topic

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_health_and_logs_without_pii(
    bootstrap: str, topics: Topics, group_id: str, sim: simulator.SimServer
) -> None:
    sample = samples.synthetic(6, seed=17, invalid=2, duplicates=2, straggler=True)
    s = pipeline_settings(bootstrap, topics, group_id, sim.url, completion_timeout_s=1.0, log_level="DEBUG")
    captured = io.StringIO()
    logs.setup("DEBUG", "json", stream=captured)
    metrics, health = Metrics(), Health(5.0)
    server = serve("127.0.0.1", 0, metrics.registry, health)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    assert get(base + "/readyz")[0] == 503  # not assigned yet
    pipeline = Pipeline.from_settings(s, metrics, health)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while get(base + "/readyz")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert get(base + "/healthz")[0] == 200
        samples.send(s, sample.messages, progress=False)
        read_topic(bootstrap, topics.output, len(sample.accounts), timeout_s=60)
        time.sleep(6)  # at least one librdkafka statistics interval for the lag gauge
        status, text = get(base + "/metrics")
    finally:
        pipeline.stop()
        runner.join(30)
        server.shutdown()
        logs.setup("WARNING", "text")
    assert status == 200
    assert f"streamer_pages_consumed_total {float(len(sample.messages))}" in text
    assert 'streamer_accounts_published_total{status="complete"}' in text
    assert 'streamer_accounts_published_total{status="incomplete"} 1.0' in text
    assert 'streamer_pages_invalid_total{reason="not_json"}' in text
    assert "streamer_pages_duplicate_total{kind=" in text
    assert 'streamer_llm_calls_total{outcome="ok"}' in text
    assert 'streamer_llm_tokens_total{kind="input"}' in text
    assert "streamer_llm_cost_usd_total" in text and "streamer_consumer_lag{" in text
    for name in (
        "streamer_llm_call_duration_seconds_bucket",
        "streamer_account_latency_seconds_bucket",
        "streamer_llm_concurrency_limit 8.0",
        "streamer_commits_total",
        "streamer_rebalances_total",
    ):
        assert name in text, name

    log_text = captured.getvalue()
    assert '"msg": "account published"' in log_text and '"offset":' in log_text
    secrets = {a.account_number for a in sample.accounts} | {"11-1111-999999"}
    lines = {
        line.strip()
        for a in sample.accounts
        for p in a.pages
        for line in p.splitlines()
        if len(line.strip()) > 20
    }
    lines |= {a.account_holder for a in sample.accounts}
    for haystack, where in ((log_text, "logs"), (text, "/metrics")):
        assert not [x for x in secrets if x in haystack], f"account number in {where}"
        assert not [x for x in lines if x in haystack], f"page text in {where}"
