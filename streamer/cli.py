"""The `streamer` command: run, bedrock-sim, topics, produce, try-extract, demo."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from streamer import corpus, logs, samples, simulator, topics
from streamer.health import Health, serve
from streamer.metrics import Metrics
from streamer.pipeline import EXIT_CONFIG, Pipeline, StartupError, check_broker
from streamer.settings import ConfigError, Settings, load_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
topics_app = typer.Typer(help="Topic administration.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
log = logging.getLogger("streamer")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"streamer: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _install_signals(pipeline: Pipeline) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        if pipeline.stopping:
            os._exit(128 + signum)  # second signal: leave now, uncommitted work is redone on restart
        log.info("signal received: draining", extra={"signal": signal.Signals(signum).name})
        pipeline.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_pipeline(s: Settings, until_idle: bool) -> Pipeline:
    """Check the broker, serve HTTP, run until stopped; raise typer.Exit with the exit code."""
    try:
        check_broker(s)
        metrics, health = Metrics(), Health(s.healthz_max_loop_age_s)
        pipeline = Pipeline.from_settings(s, metrics, health)
    except (StartupError, ConfigError) as exc:
        typer.echo(f"streamer: {exc}", err=True)
        raise typer.Exit(getattr(exc, "code", EXIT_CONFIG)) from None
    server = serve(s.http_host, s.http_port, metrics.registry, health)
    log.info("http listening", extra={"port": server.server_address[1]})
    _install_signals(pipeline)
    code = pipeline.run(until_idle=until_idle)
    server.shutdown()
    if code:
        raise typer.Exit(code)
    return pipeline


@app.command()
def run(
    until_idle: Annotated[
        bool, typer.Option(help="exit once the input is drained and nothing is open")
    ] = False,
) -> None:
    """Consume page events, extract, publish account records (settings from STREAMER_* variables)."""
    s = _settings()
    logs.setup(s.log_level, s.log_format)
    run_pipeline(s, until_idle)


@app.command("bedrock-sim")
def bedrock_sim(
    host: str = "127.0.0.1",
    port: int = 8765,
    latency_ms: float = 200.0,
    latency_per_output_token_ms: float = 0.0,
    jitter_ms: float = 0.0,
    seed: int = 0,
    tokens_per_minute: Annotated[int, typer.Option(help="0: no quota")] = 0,
    max_concurrency: Annotated[int, typer.Option(help="0: unlimited")] = 0,
    throttle_rate: float = 0.0,
    server_error_rate: float = 0.0,
    timeout_rate: float = 0.0,
    malformed_rate: float = 0.0,
    truncate_rate: float = 0.0,
) -> None:
    """A Converse-compatible Bedrock Runtime simulator (point STREAMER_BEDROCK_ENDPOINT_URL at it)."""
    rates = {
        "throttle": throttle_rate,
        "internal": server_error_rate,
        "model_timeout": timeout_rate,
        "malformed": malformed_rate,
        "truncate": truncate_rate,
    }
    config = simulator.SimConfig(
        latency_ms=latency_ms,
        latency_per_output_token_ms=latency_per_output_token_ms,
        jitter_ms=jitter_ms,
        seed=seed,
        tokens_per_minute=tokens_per_minute,
        max_concurrency=max_concurrency,
        rates={k: v for k, v in rates.items() if v > 0},
    )
    server = simulator.SimServer(host, port, simulator.Simulator(config))
    typer.echo(f"bedrock simulator on {server.url} (stats: {server.url}/_sim/stats)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@topics_app.command("create")
def topics_create(partitions: int = 6, replication: int = 1) -> None:
    """Create the input, output and dead-letter topics (existing ones are left alone)."""
    s = _settings()
    for topic, state in topics.create(s, partitions, replication).items():
        typer.echo(f"{topic}: {state}")


@app.command()
def produce(
    documents: Annotated[int, typer.Option(help="synthetic documents to send")] = 10,
    seed: int = 0,
    folder: Annotated[
        Path | None, typer.Option(help="send the JSON page events in this folder instead")
    ] = None,
    invalid: Annotated[int, typer.Option(help="invalid messages to mix in")] = 0,
    straggler: Annotated[bool, typer.Option(help="hold back one account's last page")] = False,
) -> None:
    """Send sample page events to the input topic, with a progress bar."""
    s = _settings()
    if folder is not None:
        messages = list(samples.from_folder(folder))
    else:
        messages = samples.synthetic(documents, seed, straggler=straggler, invalid=invalid).messages
    sent = samples.send(s, messages)
    typer.echo(f"sent {sent} messages to {s.input_topic}")


@app.command("try-extract")
def try_extract(pages: int = 10, batch_pages: int = 2, workers: int = 3, latency_ms: float = 200.0) -> None:
    """Extract one synthetic account through an in-process simulator and print calls, tokens, cost."""
    from concurrent.futures import ThreadPoolExecutor

    from streamer import schema
    from streamer.extractor import Extractor, make_client
    from streamer.pricing import PriceTable, Usage
    from streamer.prompt import Page

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "simulator")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "simulator")
    server = simulator.start(config=simulator.SimConfig(latency_ms=latency_ms))
    s = _settings(bedrock_endpoint_url=server.url, batch_max_pages=batch_pages)
    ex = Extractor(make_client(s), s, schema.load(s.extraction_schema), PriceTable.with_overrides(s.prices))
    account = corpus.make_account(random.Random(7), "doc-try", "12-3456-000001", pages)
    page_list = [Page(e.page_index, e.page, e.text) for e in account.events()]
    batches = [page_list[i : i + batch_pages] for i in range(0, pages, batch_pages)]
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(ex.extract, batches))
    wall = time.monotonic() - started
    usage = sum((r.usage for r in results), Usage())
    cost = sum(r.cost_usd or 0.0 for r in results)
    ok = all(seg.error is None for r in results for seg in r.segments)
    typer.echo(
        f"{pages} pages, batches of {batch_pages}, {workers} workers, {latency_ms:.0f} ms per call: "
        f"{sum(r.calls for r in results)} calls, "
        f"{usage.input_tokens} input + {usage.output_tokens} output tokens, "
        f"${cost:.6f} ({s.bedrock_model_id}), {wall:.2f} s, all ok: {ok}"
    )
    server.shutdown()


@app.command()
def demo(
    documents: int = 8,
    partitions: int = 3,
    latency_ms: float = 200.0,
) -> None:
    """The README's first command (via `make demo`): simulator, topics, samples, run, summary."""
    from streamer import demo as demo_module

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "simulator")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "simulator")
    raise typer.Exit(demo_module.main(documents, partitions, latency_ms))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
