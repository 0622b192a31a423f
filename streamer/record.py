"""The output contract: one record per (document, account), versioned."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streamer.pricing import Usage

RECORD_SCHEMA_VERSION = 1


class Status(StrEnum):
    COMPLETE = "complete"
    PARTIAL = "partial"  # some batch failed after all retries
    INCOMPLETE = "incomplete"  # pages never arrived before the completion timeout


class Conflict(BaseModel):
    """Two pages gave different values for a single-valued field; `value` is the one kept."""

    field: str
    value: Any
    value_pages: list[int]
    other: Any
    other_pages: list[int]


class Failure(BaseModel):
    """Pages whose extraction failed after all retries, and why (no page text)."""

    pages: list[int]
    error: str
    reason: str


class BalanceCheck(BaseModel):
    """Opening balance plus transactions should equal the closing balance."""

    ok: bool | None = Field(description="None when a balance is missing")
    opening_balance: float | None = None
    transactions_total: float | None = None
    closing_balance: float | None = None
    difference: float | None = None


class LlmSummary(BaseModel):
    calls: int = 0
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = Field(None, description="None when the model's price is unknown")
    model_id: str

    @classmethod
    def of(cls, model_id: str, calls: int, attempts: int, usage: Usage, cost: float | None) -> LlmSummary:
        return cls(model_id=model_id, calls=calls, attempts=attempts, cost_usd=cost, **usage.model_dump())


class AccountRecord(BaseModel):
    """What streamer publishes for each account (DESIGN.md, output record)."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = RECORD_SCHEMA_VERSION
    document_id: str
    account_number: str
    status: Status
    page_count: int
    pages_received: int
    fields: dict[str, Any]
    field_pages: dict[str, list[int]] = Field(description="document pages each field came from")
    conflicts: list[Conflict] = Field(default_factory=list)
    missing_pages: list[int] = Field(default_factory=list, description="page_index values never received")
    failed_pages: list[int] = Field(default_factory=list, description="document pages whose batch failed")
    failures: list[Failure] = Field(default_factory=list)
    checks: dict[str, BalanceCheck] = Field(default_factory=dict)
    llm: LlmSummary
    first_page_at: datetime
    published_at: datetime

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
