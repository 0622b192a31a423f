from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer import prompt, schema
from streamer.pricing import DEFAULT_PRICES, Price, PriceTable, Usage

BANK = schema.load("bank_statement")
page_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


@st.composite
def batches(draw: st.DrawFn) -> list[prompt.Page]:
    n = draw(st.integers(1, 6))
    start = draw(st.integers(1, 500))
    return [prompt.Page(i + 1, start + i, draw(page_texts)) for i in range(n)]


@given(batches(), st.integers(64, 64_000), st.one_of(st.none(), st.integers(0, 10_000)))
def test_request_marks_every_page_once_in_order(
    pages: list[prompt.Page], ceiling: int, cache_min: int | None
) -> None:
    max_tokens = prompt.max_tokens_for(len(pages), ceiling)
    req = prompt.build_request("m", BANK, pages, max_tokens, cache_min)
    text = req["messages"][0]["content"][0]["text"]
    numbers = [int(n) for n in re.findall(r'^<page number="(\d+)">$', text, re.M)]
    assert numbers == [p.number for p in pages] or any("<page" in p.text for p in pages)
    for p in pages:
        assert f'<page number="{p.number}">\n{p.text}\n</page>' in text
    assert 1 <= req["inferenceConfig"]["maxTokens"] <= ceiling
    assert req["toolConfig"]["toolChoice"] == {"tool": {"name": prompt.TOOL_NAME}}
    has_cache = any("cachePoint" in b for b in req["system"])
    assert has_cache == (cache_min is not None and prompt.static_prefix_tokens(BANK) >= cache_min)


def test_tool_schema_is_the_extraction_schema_plus_source_pages() -> None:
    spec = prompt.tool_config(BANK)["tools"][0]["toolSpec"]
    props = spec["inputSchema"]["json"]["properties"]
    assert set(props) == set(schema.BankStatement.model_fields) | {schema.SOURCE_PAGES}


def test_empty_batch_is_an_error() -> None:
    with pytest.raises(ValueError):
        prompt.build_request("m", BANK, [], 100, None)


usages = st.builds(
    Usage,
    input_tokens=st.integers(0, 10**9),
    output_tokens=st.integers(0, 10**9),
    cache_read_tokens=st.integers(0, 10**9),
    cache_write_tokens=st.integers(0, 10**9),
)


@given(usages, usages)
def test_cost_is_additive_and_non_negative(a: Usage, b: Usage) -> None:
    t = PriceTable()
    model = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    ca, cb, cab = t.cost(model, a), t.cost(model, b), t.cost(model, a + b)
    assert ca is not None and cb is not None and cab is not None
    assert ca >= 0 and cab == pytest.approx(ca + cb, rel=1e-9, abs=1e-12)


@given(usages)
def test_inference_profile_prices_as_its_base_model_and_unknown_is_none(u: Usage) -> None:
    t = PriceTable()
    assert t.cost("eu.anthropic.claude-haiku-4-5-20251001-v1:0", u) == t.cost(
        "anthropic.claude-haiku-4-5-20251001-v1:0", u
    )
    assert t.cost("acme.unknown-v1", u) is None


def test_price_arithmetic_by_hand() -> None:
    p = Price(1.0, 5.0, cache_read_multiplier=0.1, cache_write_multiplier=1.25)
    u = Usage(
        input_tokens=1_000_000, output_tokens=200_000, cache_read_tokens=500_000, cache_write_tokens=400_000
    )
    assert p.cost(u) == pytest.approx(1.0 + 1.0 + 0.05 + 0.5)


def test_overrides_extend_and_validate() -> None:
    t = PriceTable.with_overrides({"acme.model": {"input_per_mtok": 2, "output_per_mtok": 4}})
    assert t.cost("acme.model", Usage(input_tokens=1_000_000)) == pytest.approx(2.0)
    patched = PriceTable.with_overrides({"anthropic.claude-haiku-4-5-20251001-v1:0": {"output_per_mtok": 9}})
    base = DEFAULT_PRICES["anthropic.claude-haiku-4-5-20251001-v1:0"]
    assert patched.price("us.anthropic.claude-haiku-4-5-20251001-v1:0") == Price(
        **{**base.__dict__, "output_per_mtok": 9}
    )
    with pytest.raises(ValueError):
        PriceTable.with_overrides({"acme.model": {"input_per_mtok": 2}})
    with pytest.raises(ValueError):
        PriceTable.with_overrides({"acme.model": {"input_per_mtok": 2, "output_per_mtok": 1, "bogus": 1}})
