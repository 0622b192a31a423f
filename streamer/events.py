"""The input contract: one page event per Kafka message, and its decoder."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

SCHEMA_VERSIONS = frozenset({1})


class Reason(StrEnum):
    """Why a message went to the dead-letter topic; also the `reason` metric label."""

    EMPTY = "empty_value"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    INVALID_FIELD = "invalid_field"
    KEY_MISMATCH = "key_mismatch"
    PAGE_OUT_OF_RANGE = "page_index_out_of_range"
    UNSUPPORTED_VERSION = "unsupported_schema_version"
    CONTRADICTION = "contradicts_earlier_pages"


class InvalidEvent(Exception):
    """A message that breaks the contract; `detail` is safe to log (no page text)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class PageEvent(BaseModel):
    """One OCR'd page of one account of one document (DESIGN.md, input event)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    document_id: StrictStr = Field(min_length=1, max_length=256)
    account_number: StrictStr = Field(min_length=1, max_length=256)
    page_index: StrictInt = Field(ge=1)
    page_count: StrictInt = Field(ge=1, le=100_000)
    text: StrictStr
    document_page: StrictInt | None = Field(None, ge=1)
    schema_version: StrictInt = 1

    @model_validator(mode="after")
    def _defaults(self) -> PageEvent:
        if self.document_page is None:
            object.__setattr__(self, "document_page", self.page_index)
        return self

    @property
    def page(self) -> int:
        """The number of this page in the original document."""
        return self.document_page or self.page_index

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def decode(key: bytes | None, value: bytes | None, max_bytes: int) -> PageEvent:
    """Turn raw message bytes into a PageEvent, or raise InvalidEvent with the reason."""
    if not value:
        raise InvalidEvent(Reason.EMPTY, "message value is empty")
    if len(value) > max_bytes:
        raise InvalidEvent(Reason.TOO_LARGE, f"value is {len(value)} bytes, limit {max_bytes}")
    try:
        raw: Any = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidEvent(Reason.NOT_UTF8, f"value is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InvalidEvent(Reason.NOT_JSON, f"value is not JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise InvalidEvent(Reason.NOT_JSON, "value nests too deeply") from None
    if not isinstance(raw, dict):
        raise InvalidEvent(Reason.NOT_OBJECT, f"value is a JSON {type(raw).__name__}, not an object")
    version = raw.get("schema_version", 1)
    if isinstance(version, int) and version not in SCHEMA_VERSIONS:
        raise InvalidEvent(Reason.UNSUPPORTED_VERSION, f"schema_version {version} is not supported")
    try:
        event = PageEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(Reason.INVALID_FIELD, _fields_detail(exc)) from None
    if event.page_index > event.page_count:
        raise InvalidEvent(
            Reason.PAGE_OUT_OF_RANGE, f"page_index {event.page_index} > page_count {event.page_count}"
        )
    if key is not None:
        try:
            key_text = key.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent(Reason.KEY_MISMATCH, "key is not UTF-8") from None
        if key_text != event.account_number:
            raise InvalidEvent(Reason.KEY_MISMATCH, "key differs from account_number")
    return event


def _fields_detail(exc: ValidationError) -> str:
    """Field names and messages only: pydantic's default text would echo the input values."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)
