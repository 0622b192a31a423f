from __future__ import annotations

import json

import pytest

from streamer.dlq import DlqHeaders
from streamer.events import InvalidEvent, PageEvent, Reason, decode

LIMIT = 10_000


def ev(**over: object) -> bytes:
    base: dict[str, object] = {
        "document_id": "doc-1",
        "account_number": "ACC-1",
        "page_index": 1,
        "page_count": 2,
        "text": "hello",
    }
    base.update(over)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def reason_of(key: bytes | None, value: bytes | None) -> Reason:
    with pytest.raises(InvalidEvent) as err:
        decode(key, value, LIMIT)
    return err.value.reason


def test_valid_event_with_defaults_and_unknown_fields() -> None:
    e = decode(b"ACC-1", ev(extra_field=[1, 2]), LIMIT)
    assert e.document_page == 1 and e.page == 1 and e.schema_version == 1
    assert decode(None, ev(document_page=7), LIMIT).page == 7


def test_empty_text_is_valid() -> None:
    assert decode(b"ACC-1", ev(text=""), LIMIT).text == ""


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"ACC-1", None, Reason.EMPTY),
        (b"ACC-1", b"", Reason.EMPTY),
        (b"ACC-1", b"\xff\xfe{}", Reason.NOT_UTF8),
        (b"ACC-1", b"{not json", Reason.NOT_JSON),
        (b"ACC-1", b"[1, 2]", Reason.NOT_OBJECT),
        (b"ACC-1", b'"a string"', Reason.NOT_OBJECT),
        (b"OTHER", ev(), Reason.KEY_MISMATCH),
        (b"\xff", ev(), Reason.KEY_MISMATCH),
        (b"ACC-1", ev(page_index=3), Reason.PAGE_OUT_OF_RANGE),
        (b"ACC-1", ev(page_index=0), Reason.INVALID_FIELD),
        (b"ACC-1", ev(page_count=0), Reason.INVALID_FIELD),
        (b"ACC-1", ev(page_index="1"), Reason.INVALID_FIELD),
        (b"ACC-1", ev(document_id=""), Reason.INVALID_FIELD),
        (b"ACC-1", ev(document_id="x" * 257), Reason.INVALID_FIELD),
        (b"ACC-1", ev(text=None), Reason.INVALID_FIELD),
        (b"ACC-1", ev(text=5), Reason.INVALID_FIELD),
        (None, ev(account_number=None), Reason.INVALID_FIELD),
        (b"ACC-1", ev(schema_version=2), Reason.UNSUPPORTED_VERSION),
        (b"ACC-1", ev(text="x" * LIMIT), Reason.TOO_LARGE),
        (b"ACC-1", b"[" * 6000 + b"]" * 6000, Reason.TOO_LARGE),
    ],
)
def test_bad_messages_have_a_typed_reason(key: bytes | None, value: bytes | None, reason: Reason) -> None:
    assert reason_of(key, value) == reason


def test_deep_nesting_is_not_json_not_a_crash() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    assert reason_of(b"k", deep) in (Reason.NOT_JSON, Reason.NOT_OBJECT)


def test_detail_never_echoes_the_text() -> None:
    secret = "SECRET-PAGE-TEXT"
    with pytest.raises(InvalidEvent) as err:
        decode(b"ACC-1", ev(text=secret, page_index="x"), LIMIT)
    assert secret not in str(err.value)
    with pytest.raises(InvalidEvent) as err2:
        decode(b"ACC-2", ev(text=secret), LIMIT)
    assert secret not in str(err2.value) and "ACC-1" not in str(err2.value)


def test_round_trip_json() -> None:
    e = PageEvent(document_id="d", account_number="a", page_index=2, page_count=3, text="t")
    assert decode(b"a", e.to_json(), LIMIT) == e


def test_dlq_headers_round_trip() -> None:
    h = DlqHeaders(error="not_json", reason="bad", source_topic="t", source_partition=3, source_offset=42)
    raw = h.to_kafka()
    assert ("streamer.source_offset", b"42") in raw
    assert DlqHeaders.from_kafka([*raw, ("other", None)]) == h
