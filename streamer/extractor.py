"""One batch of pages -> validated fields, through boto3 `bedrock-runtime` Converse.

The only retry layer is here (botocore's is set to a single attempt): retryable errors back off
exponentially with full jitter up to max attempts and a deadline; a truncated answer splits the
batch in halves down to one page; a tool input that fails validation gets one repair call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from streamer import prompt
from streamer.extraction import Extraction, Segment
from streamer.pricing import PriceTable, Usage
from streamer.prompt import Page
from streamer.schema import SOURCE_PAGES, ExtractionSchema, SchemaError
from streamer.settings import Settings

RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ModelNotReadyException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelTimeoutException",
    }
)
THROTTLES = frozenset({"ThrottlingException"})
TRANSPORT_ERRORS = (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TRANSPORT_ERRORS) or error_code(exc) in RETRYABLE


def make_client(s: Settings) -> Any:
    """The real boto3 client; botocore retries off because ours are the only ones."""
    config = Config(
        connect_timeout=s.bedrock_connect_timeout_s,
        read_timeout=s.bedrock_read_timeout_s,
        max_pool_connections=max(10, s.max_in_flight + 2),
        retries={"total_max_attempts": 1, "mode": "standard"},
        tcp_keepalive=True,
    )
    return boto3.client(
        "bedrock-runtime",
        region_name=s.bedrock_region or boto3.session.Session().region_name or "us-east-1",
        endpoint_url=s.bedrock_endpoint_url,
        config=config,
    )


class _Failed(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Extractor:
    """Thread-safe: worker threads share one instance and one boto3 client."""

    def __init__(self, client: Any, settings: Settings, schema: ExtractionSchema, prices: PriceTable) -> None:
        self.client = client
        self.s = settings
        self.schema = schema
        self.prices = prices
        price = prices.price(settings.bedrock_model_id)
        self.cache_min_tokens = price.cache_min_tokens if price else None

    def extract(self, pages: Sequence[Page], on_throttle: Callable[[], None] | None = None) -> Extraction:
        """Never raises for a model or service failure: failures are segments with a reason."""
        out = Extraction(model_id=self.s.bedrock_model_id)
        started = time.monotonic()
        self._extract(sorted(pages, key=lambda p: p.index), out, on_throttle)
        out.latency_s = time.monotonic() - started
        out.cost_usd = self.prices.cost(self.s.bedrock_model_id, out.usage)
        return out

    def _extract(self, pages: list[Page], out: Extraction, on_throttle: Callable[[], None] | None) -> None:
        indexes = tuple(p.index for p in pages)
        request = prompt.build_request(
            self.s.bedrock_model_id,
            self.schema,
            pages,
            prompt.max_tokens_for(len(pages), self.s.bedrock_max_tokens),
            self.cache_min_tokens,
        )
        try:
            response = self._converse(request, out, on_throttle)
            if response.get("stopReason") == "max_tokens":
                if len(pages) > 1:
                    half = len(pages) // 2
                    self._extract(pages[:half], out, on_throttle)
                    self._extract(pages[half:], out, on_throttle)
                    return
                raise _Failed("truncated", "answer for a single page exceeded maxTokens")
            fields, field_pages = self._validated(request, response, pages, out, on_throttle)
        except _Failed as failed:
            out.segments.append(Segment(indexes, error=failed.code, reason=failed.reason))
            return
        out.segments.append(Segment(indexes, fields=fields, field_pages=field_pages))

    def _validated(
        self,
        request: dict[str, Any],
        response: dict[str, Any],
        pages: list[Page],
        out: Extraction,
        on_throttle: Callable[[], None] | None,
    ) -> tuple[dict[str, Any], dict[str, list[int]]]:
        tool_use = _tool_use(response)
        try:
            return self._check(tool_use, pages)
        except SchemaError as first:
            repair = {**request, "messages": prompt.repair_messages(request, tool_use or {}, first.errors)}
            response = self._converse(repair, out, on_throttle)
            try:
                return self._check(_tool_use(response), pages)
            except SchemaError as second:
                raise _Failed("invalid_output", "after one repair: " + "; ".join(second.errors)) from None

    def _check(
        self, tool_use: dict[str, Any] | None, pages: list[Page]
    ) -> tuple[dict[str, Any], dict[str, list[int]]]:
        if tool_use is None:
            raise SchemaError([f"no call of tool {prompt.TOOL_NAME}"])
        data = tool_use.get("input")
        if not isinstance(data, dict):
            raise SchemaError(["tool input is not an object"])
        data = dict(data)
        claimed = data.pop(SOURCE_PAGES, None)
        fields = self.schema.validate(data)
        numbers = {p.number for p in pages}
        all_pages = sorted(numbers)
        field_pages: dict[str, list[int]] = {}
        for name, value in fields.items():
            if value is None or value == []:
                continue
            got = claimed.get(name) if isinstance(claimed, dict) else None
            valid = (
                sorted({n for n in got if isinstance(n, int) and n in numbers})
                if isinstance(got, list)
                else []
            )
            field_pages[name] = valid or all_pages
        return fields, field_pages

    def _converse(
        self, request: dict[str, Any], out: Extraction, on_throttle: Callable[[], None] | None
    ) -> dict[str, Any]:
        out.calls += 1

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if exc is not None:
                code = error_code(exc)
                out.retries[code] += 1
                if code in THROTTLES and on_throttle is not None:
                    on_throttle()

        def attempt() -> dict[str, Any]:
            out.attempts += 1
            response: dict[str, Any] = self.client.converse(**request)
            u = response.get("usage", {})
            out.usage = out.usage + Usage(
                input_tokens=u.get("inputTokens", 0),
                output_tokens=u.get("outputTokens", 0),
                cache_read_tokens=u.get("cacheReadInputTokens", 0),
                cache_write_tokens=u.get("cacheWriteInputTokens", 0),
            )
            return response

        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.s.bedrock_max_attempts)
            | stop_after_delay(self.s.bedrock_retry_deadline_s),
            wait=wait_random_exponential(
                multiplier=self.s.bedrock_backoff_base_s, max=self.s.bedrock_backoff_max_s
            ),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Exception as exc:
            code = error_code(exc)
            if code in THROTTLES and on_throttle is not None:
                on_throttle()
            kind = "retryable, attempts exhausted" if is_retryable(exc) else "not retryable"
            tries = retrying.statistics.get("attempt_number", 1)
            raise _Failed(code, f"{code} ({kind}) after {tries} attempt(s)") from None


def _tool_use(response: dict[str, Any]) -> dict[str, Any] | None:
    content = response.get("output", {}).get("message", {}).get("content", [])
    for block in content:
        tu = block.get("toolUse")
        if tu and tu.get("name") == prompt.TOOL_NAME:
            return dict(tu)
    return None
