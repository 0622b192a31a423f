"""A Bedrock Runtime Converse simulator that boto3 talks to over HTTP.

It speaks the wire format (`POST /model/{modelId}/converse`, JSON, `x-amzn-ErrorType`), reads the
synthetic corpus pages like a model would, counts tokens (~4 characters each), adds latency,
throttles at a tokens-per-minute quota and a concurrency limit, and injects faults. Counters are
at `GET /_sim/stats`; `POST /_sim/config` changes settings at run time; `POST /_sim/reset`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field

from streamer import corpus
from streamer.prompt import estimate_tokens

PAGE = re.compile(r'<page number="(\d+)">\n(.*?)\n</page>', re.S)
MODEL_PATH = re.compile(r"^/model/(?P<model>[^/]+)/converse$")

# Fault name -> (HTTP status, x-amzn-ErrorType); the statuses Bedrock Runtime documents.
ERRORS: dict[str, tuple[int, str]] = {
    "throttle": (429, "ThrottlingException"),
    "not_ready": (429, "ModelNotReadyException"),
    "unavailable": (503, "ServiceUnavailableException"),
    "internal": (500, "InternalServerException"),
    "model_timeout": (408, "ModelTimeoutException"),
    "validation": (400, "ValidationException"),
    "access_denied": (403, "AccessDeniedException"),
    "not_found": (404, "ResourceNotFoundException"),
}
FAULTS = (*ERRORS, "malformed", "truncate", "hang")


class SimConfig(BaseModel):
    """Knobs of the simulator; all can be changed at run time with `POST /_sim/config`."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, description="base latency of a call")
    latency_per_output_token_ms: float = Field(0.0, ge=0)
    jitter_ms: float = Field(0.0, ge=0, description="uniform +- jitter")
    seed: int = 0
    tokens_per_minute: int = Field(0, ge=0, description="0: no quota; reserves input + maxTokens per call")
    max_concurrency: int = Field(0, ge=0, description="0: unlimited; above it calls are throttled")
    hang_s: float = Field(30.0, ge=0, description="how long a `hang` fault stalls before answering")
    rates: dict[str, float] = Field(default_factory=dict, description="fault name -> probability per call")
    script: list[str] = Field(default_factory=list, description="faults for the next calls, in order")


class Stats:
    def __init__(self) -> None:
        self.calls = 0
        self.ok = 0
        self.faults: Counter[str] = Counter()
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.in_flight = 0
        self.peak_concurrency = 0
        self.by_account: Counter[str] = Counter()
        self.pages_extracted = 0
        self.repairs = 0
        self.max_tokens_seen: list[int] = []

    def as_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["faults"] = dict(self.faults)
        d["by_account"] = dict(self.by_account)
        d["max_tokens_seen"] = self.max_tokens_seen[-50:]
        return d


class _SimError(Exception):
    def __init__(self, fault: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = ERRORS[fault]
        self.fault = fault


class Simulator:
    """The model and its quota; HTTP handling is in `_Handler`."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.lock = threading.Lock()
        self.config = config or SimConfig()
        self.rng = random.Random(self.config.seed)
        self.stats = Stats()
        self.window: deque[tuple[float, int]] = deque()
        self.cached_prefixes: set[str] = set()

    def configure(self, changes: dict[str, Any]) -> None:
        with self.lock:
            self.config = SimConfig.model_validate({**self.config.model_dump(), **changes})
            if "seed" in changes:
                self.rng = random.Random(self.config.seed)

    def reset(self) -> None:
        with self.lock:
            self.stats = Stats()
            self.window.clear()
            self.cached_prefixes.clear()

    def _next_fault(self) -> str | None:
        if self.config.script:
            return self.config.script.pop(0)
        for fault, rate in self.config.rates.items():
            if self.rng.random() < rate:
                return fault
        return None

    def _reserve(self, tokens: int, now: float) -> bool:
        quota = self.config.tokens_per_minute
        if not quota:
            return True
        while self.window and self.window[0][0] <= now - 60:
            self.window.popleft()
        if sum(t for _, t in self.window) + tokens > quota:
            return False
        self.window.append((now, tokens))
        return True

    def converse(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The response body, or raise _SimError; sleeps for the configured latency."""
        request_text, prefix_text = _texts(body)
        max_tokens = body.get("inferenceConfig", {}).get("maxTokens")
        tool = body.get("toolConfig", {}).get("toolChoice", {}).get("tool", {}).get("name")
        with self.lock:
            self.stats.calls += 1
            if not isinstance(max_tokens, int) or max_tokens < 1:
                self.stats.faults["validation"] += 1
                raise _SimError("validation", "inferenceConfig.maxTokens is required")
            if not tool:
                self.stats.faults["validation"] += 1
                raise _SimError("validation", "toolChoice must name a tool")
            self.stats.max_tokens_seen.append(max_tokens)
            fault = self._next_fault()
            if fault in ERRORS:
                self.stats.faults[fault] += 1
                raise _SimError(fault, f"simulated {ERRORS[fault][1]}")
            prefix_tokens = estimate_tokens(prefix_text)
            input_tokens = estimate_tokens(request_text) + prefix_tokens
            if self.config.max_concurrency and self.stats.in_flight >= self.config.max_concurrency:
                self.stats.faults["throttle"] += 1
                raise _SimError("throttle", "Too many concurrent requests, please wait before trying again.")
            if not self._reserve(input_tokens + max_tokens, time.monotonic()):
                self.stats.faults["throttle"] += 1
                raise _SimError("throttle", "Too many tokens, please wait before trying again.")
            self.stats.in_flight += 1
            self.stats.peak_concurrency = max(self.stats.peak_concurrency, self.stats.in_flight)
            cache_read = cache_write = 0
            if _has_cache_point(body):
                key = hashlib.sha256(prefix_text.encode()).hexdigest()
                if key in self.cached_prefixes:
                    cache_read = prefix_tokens
                else:
                    cache_write = prefix_tokens
                    self.cached_prefixes.add(key)
                input_tokens -= prefix_tokens
            jitter = self.rng.uniform(-self.config.jitter_ms, self.config.jitter_ms)
            if fault:
                self.stats.faults[fault] += 1
        try:
            pages = [(int(n), text) for n, text in PAGE.findall(_first_user_text(body))]
            tool_input = _read(pages)
            if fault == "malformed":
                tool_input = {**tool_input, "opening_balance": "lots", "transactions": "see statement"}
            output_tokens = estimate_tokens(json.dumps(tool_input))
            stop = "tool_use"
            if fault == "truncate" or output_tokens > max_tokens:
                stop, output_tokens = "max_tokens", max_tokens
            latency = (
                self.config.latency_ms + self.config.latency_per_output_token_ms * output_tokens + jitter
            )
            if fault == "hang":
                latency = self.config.hang_s * 1000
            time.sleep(max(0.0, latency) / 1000)
        finally:
            with self.lock:
                self.stats.in_flight -= 1
        with self.lock:
            self.stats.ok += 1
            self.stats.input_tokens += input_tokens
            self.stats.output_tokens += output_tokens
            self.stats.cache_read_tokens += cache_read
            self.stats.cache_write_tokens += cache_write
            if len(body.get("messages", [])) > 1:
                self.stats.repairs += 1
            if stop == "tool_use":
                self.stats.pages_extracted += len(pages)
            for account in {corpus.parse_page(t).get("account_number") for _, t in pages} - {None}:
                self.stats.by_account[str(account)] += 1
        tool_use = {"toolUseId": f"tooluse_{uuid.uuid4().hex[:20]}", "name": tool, "input": tool_input}
        content = [{"toolUse": tool_use}] if stop == "tool_use" else [{"text": "(cut off at maxTokens)"}]
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens + cache_read + cache_write,
                "cacheReadInputTokens": cache_read,
                "cacheWriteInputTokens": cache_write,
            },
            "metrics": {"latencyMs": int(max(0.0, latency))},
        }


def _first_user_text(body: dict[str, Any]) -> str:
    for m in body.get("messages", []):
        if m.get("role") == "user":
            return "".join(c.get("text", "") for c in m.get("content", []))
    return ""


def _texts(body: dict[str, Any]) -> tuple[str, str]:
    """(what varies per call, the static prefix: tools + system)."""
    system = "".join(b.get("text", "") for b in body.get("system", []))
    prefix = json.dumps(body.get("toolConfig", {})) + system
    messages = json.dumps(body.get("messages", []))
    return messages, prefix


def _has_cache_point(body: dict[str, Any]) -> bool:
    return any("cachePoint" in b for b in body.get("system", []))


def _read(pages: list[tuple[int, str]]) -> dict[str, Any]:
    """What a perfect model returns for these pages: first/last values, rows in page order."""
    fields: dict[str, Any] = {"transactions": []}
    sources: dict[str, list[int]] = {}
    for number, text in sorted(pages):
        for name, value in corpus.parse_page(text).items():
            if name == "transactions":
                fields[name] += value
                sources.setdefault(name, []).append(number)
            elif name not in fields or name == "closing_balance":
                fields[name] = value
                sources[name] = [number]
            elif fields[name] == value:
                sources[name].append(number)
    fields["source_pages"] = sources
    return fields


class _Handler(BaseHTTPRequestHandler):
    server: SimServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status: int, body: dict[str, Any], error_type: str | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header(
                "x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
            )
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        parsed = json.loads(self.rfile.read(length) or b"{}")
        return parsed if isinstance(parsed, dict) else {}

    def do_GET(self) -> None:
        if self.path == "/_sim/stats":
            sim = self.server.sim
            with sim.lock:
                self._send(200, sim.stats.as_dict())
        elif self.path == "/_sim/config":
            self._send(200, self.server.sim.config.model_dump())
        elif self.path == "/healthz":
            self._send(200, {"ok": True})
        else:
            self._send(404, {"message": "not found"}, "ResourceNotFoundException")

    def do_POST(self) -> None:
        try:
            body = self._body()
        except ValueError:
            self._send(400, {"message": "body is not JSON"}, "ValidationException")
            return
        if self.path == "/_sim/config":
            try:
                self.server.sim.configure(body)
            except ValueError as exc:
                self._send(400, {"message": str(exc)})
                return
            self._send(200, self.server.sim.config.model_dump())
            return
        if self.path == "/_sim/reset":
            self.server.sim.reset()
            self._send(200, {"ok": True})
            return
        m = MODEL_PATH.match(self.path)
        if not m:
            self._send(404, {"message": f"no route {self.path}"}, "UnknownOperationException")
            return
        try:
            self._send(200, self.server.sim.converse(unquote(m["model"]), body))
        except _SimError as err:
            self._send(err.status, {"message": str(err)}, err.code)
        except (BrokenPipeError, ConnectionResetError):
            pass


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, host: str, port: int, sim: Simulator) -> None:
        super().__init__((host, port), _Handler)
        self.sim = sim

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def start(host: str = "127.0.0.1", port: int = 0, config: SimConfig | None = None) -> SimServer:
    """A simulator serving on a background thread (for tests, the demo and benchmarks)."""
    server = SimServer(host, port, Simulator(config))
    threading.Thread(target=server.serve_forever, name="bedrock-sim", daemon=True).start()
    return server
