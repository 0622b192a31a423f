"""Sample input: synthetic documents (or a folder of JSON page events) sent to the input topic."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer
from tqdm import tqdm

from streamer import corpus, kafka_config
from streamer.events import PageEvent
from streamer.settings import Settings

Message = tuple[bytes | None, bytes]


@dataclass
class SampleSet:
    """Messages in send order and the accounts they hold (ground truth)."""

    messages: list[Message]
    accounts: list[corpus.Account]
    straggler: corpus.Account | None = None
    invalid: int = 0
    duplicates: int = 0


def synthetic(
    documents: int,
    seed: int = 0,
    straggler: bool = False,
    invalid: int = 0,
    duplicates: int = 0,
    pages_per_account: tuple[int, int] = (1, 6),
) -> SampleSet:
    """Accounts interleaved; a straggler's last page is held back; invalid messages mixed in."""
    rng = random.Random(seed)
    accounts = corpus.generate(documents, seed=seed, pages_per_account=pages_per_account)
    events = corpus.interleave(accounts, seed=seed)
    late = None
    if straggler:
        late = next((a for a in accounts if len(a.pages) > 1), None)
        if late is not None:
            last = late.events()[-1]
            events = [e for e in events if e != last]
    for _ in range(duplicates):
        events.insert(rng.randrange(len(events) + 1), rng.choice(events))
    messages: list[Message] = [(e.account_number.encode(), e.to_json()) for e in events]
    bad: list[Message] = [
        (b"not-json", b"{this is not json"),
        (
            b"11-1111-999999",
            json.dumps(
                {
                    "document_id": "d",
                    "account_number": "11-1111-999999",
                    "page_index": 3,
                    "page_count": 2,
                    "text": "",
                }
            ).encode(),
        ),
        (
            b"mismatch",
            json.dumps(
                {"document_id": "d", "account_number": "other", "page_index": 1, "page_count": 1, "text": ""}
            ).encode(),
        ),
    ]
    for i in range(invalid):
        messages.insert(rng.randrange(len(messages) + 1), bad[i % len(bad)])
    return SampleSet(messages, accounts, late, invalid, duplicates)


def from_folder(folder: Path) -> Iterator[Message]:
    """Each *.json file is one page event, or a list of them; keys are the account numbers."""
    for path in sorted(folder.glob("*.json")):
        raw = json.loads(path.read_text())
        for item in raw if isinstance(raw, list) else [raw]:
            event = PageEvent.model_validate(item)
            yield event.account_number.encode(), event.to_json()


def send(s: Settings, messages: list[Message], progress: bool = True) -> int:
    """Produce with a progress bar; returns how many the broker acknowledged."""
    producer = Producer(kafka_config.producer(s))
    acked = [0]
    failed: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is None:
            acked[0] += 1
        else:
            failed.append(str(err))

    for key, value in tqdm(messages, desc="producing", unit="msg", disable=not progress):
        while True:
            try:
                producer.produce(s.input_topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)
    if failed:
        raise RuntimeError(f"{len(failed)} messages not acknowledged, first: {failed[0]}")
    return acked[0]
