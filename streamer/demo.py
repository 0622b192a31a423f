"""`make demo`: the whole pipeline on local defaults, then a readable summary."""

from __future__ import annotations

import json

import typer

from streamer import logs, samples, simulator, topics
from streamer.cli import run_pipeline
from streamer.settings import ConfigError, load_settings


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(documents: int, partitions: int, latency_ms: float) -> int:
    server = simulator.start(
        config=simulator.SimConfig(latency_ms=latency_ms, jitter_ms=latency_ms / 4, seed=1)
    )
    try:
        s = load_settings(
            bedrock_endpoint_url=server.url,
            completion_timeout_s=4.0,
            idle_exit_s=1.0,
            log_format="text",
            log_level="WARNING",
        )
    except ConfigError as exc:
        typer.echo(f"streamer: {exc}", err=True)
        return 2
    logs.setup(s.log_level, s.log_format)
    typer.echo(
        f"bedrock simulator at {server.url}, {latency_ms:.0f} ms per call; Kafka at {s.bootstrap_servers}"
    )
    for topic, state in topics.create(s, partitions, 1).items():
        typer.echo(f"topic {topic}: {state}")
    sample = samples.synthetic(documents, seed=42, straggler=True, invalid=1, duplicates=1)
    samples.send(s, sample.messages)
    typer.echo(
        f"sent {len(sample.messages)} messages: {len(sample.accounts)} accounts interleaved, "
        f"1 straggler (last page held back), {sample.invalid} invalid, {sample.duplicates} duplicate"
    )
    typer.echo(f"running the consumer until the input is drained (metrics on :{s.http_port}/metrics) ...")
    pipeline = run_pipeline(s, until_idle=True)
    summary = pipeline.summary
    stats = server.sim.stats.as_dict()
    server.shutdown()

    expected = {a.account_number: a.expected_fields() for a in sample.accounts}
    lat = summary.account_latencies
    typer.echo("\n=== summary ===")
    typer.echo(f"accounts published: {summary.published} by status {summary.by_status}")
    typer.echo(
        f"pages consumed: {summary.pages}, duplicates: {summary.duplicates}, sent to DLQ: {summary.invalid}"
    )
    typer.echo(
        f"LLM calls: {summary.llm_calls} (simulator saw {stats['calls']}), tokens in/out: "
        f"{summary.input_tokens}/{summary.output_tokens}, cost: ${summary.cost_usd:.4f}"
    )
    typer.echo(
        f"end-to-end account latency p50 {_percentile(lat, 0.5):.2f} s, p95 {_percentile(lat, 0.95):.2f} s"
    )
    record = summary.last_record
    if record is not None:
        shown = record.model_dump(mode="json")
        txs = shown["fields"].get("transactions", [])
        shown["fields"]["transactions"] = [*txs[:2], f"... {max(0, len(txs) - 2)} more"]
        matches = expected.get(record.account_number) == record.fields
        typer.echo(f"one merged record (ground truth {'matches' if matches else 'differs'}):")
        for key, value in shown.items():
            typer.echo(f"  {key}: {json.dumps(value, default=str)}")
    return 0
