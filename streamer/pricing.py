"""Token usage and what it costs: a price table per model id, pure arithmetic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")


class Usage(BaseModel):
    """Tokens of one or more calls; numeric fields only, so it can be summed and logged."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True)
class Price:
    """USD per million tokens; cache reads and writes as multiples of the input price."""

    input_per_mtok: float
    output_per_mtok: float
    cache_read_multiplier: float = 0.1
    cache_write_multiplier: float = 1.25
    cache_min_tokens: int = 1024

    def cost(self, usage: Usage) -> float:
        micro = (
            usage.input_tokens * self.input_per_mtok
            + usage.output_tokens * self.output_per_mtok
            + usage.cache_read_tokens * self.input_per_mtok * self.cache_read_multiplier
            + usage.cache_write_tokens * self.input_per_mtok * self.cache_write_multiplier
        )
        return micro / 1_000_000


# Public on-demand prices (USD per million tokens) of the base model ids.
DEFAULT_PRICES: dict[str, Price] = {
    "anthropic.claude-haiku-4-5-20251001-v1:0": Price(1.0, 5.0, cache_min_tokens=4096),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": Price(3.0, 15.0, cache_min_tokens=1024),
    "anthropic.claude-3-5-haiku-20241022-v1:0": Price(0.8, 4.0, cache_min_tokens=2048),
    "anthropic.claude-3-haiku-20240307-v1:0": Price(0.25, 1.25, cache_min_tokens=2048),
    "amazon.nova-lite-v1:0": Price(0.06, 0.24, cache_read_multiplier=0.25, cache_write_multiplier=0.0),
    "amazon.nova-pro-v1:0": Price(0.8, 3.2, cache_read_multiplier=0.25, cache_write_multiplier=0.0),
}


def base_model_id(model_id: str) -> str:
    """`us.anthropic.x` (a cross-region inference profile) prices as `anthropic.x`."""
    for prefix in REGION_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


@dataclass(frozen=True)
class PriceTable:
    """Default prices merged with the user's `STREAMER_PRICES` overrides."""

    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Mapping[str, float]]) -> PriceTable:
        merged = dict(DEFAULT_PRICES)
        allowed = set(Price.__dataclass_fields__)
        for model_id, spec in overrides.items():
            required = set() if base_model_id(model_id) in merged else {"input_per_mtok", "output_per_mtok"}
            if set(spec) - allowed or required - set(spec):
                raise ValueError(
                    f"price of {model_id!r}: keys must be among {sorted(allowed)}; "
                    "a model without a default price needs input_per_mtok and output_per_mtok"
                )
            known = merged.get(base_model_id(model_id))
            base = known.__dict__ if known else {}
            merged[base_model_id(model_id)] = Price(**{**base, **spec})
        return cls(merged)

    def price(self, model_id: str) -> Price | None:
        return self.prices.get(model_id) or self.prices.get(base_model_id(model_id))

    def cost(self, model_id: str, usage: Usage) -> float | None:
        """None when the model id is unknown: an unknown cost is not a zero cost."""
        p = self.price(model_id)
        return None if p is None else p.cost(usage)
