"""The dead-letter contract: original bytes unchanged, the reason and the source in headers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

PREFIX = "streamer."


class DlqHeaders(BaseModel):
    """Headers of a dead-letter message; names are `streamer.<field>`."""

    model_config = ConfigDict(frozen=True)

    error: str  # machine-readable reason code (events.Reason)
    reason: str  # human-readable, never page text
    source_topic: str
    source_partition: int
    source_offset: int

    def to_kafka(self) -> list[tuple[str, bytes]]:
        return [(PREFIX + k, str(v).encode()) for k, v in self.model_dump().items()]

    @classmethod
    def from_kafka(cls, headers: list[tuple[str, bytes | None]] | None) -> DlqHeaders:
        values = {k[len(PREFIX) :]: (v or b"").decode() for k, v in headers or [] if k.startswith(PREFIX)}
        return cls.model_validate(values)
