"""The Converse request for one batch of pages: fixed system prompt, page markers, forced tool use."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamer.schema import SOURCE_PAGES, ExtractionSchema

TOOL_NAME = "record_fields"
CHARS_PER_TOKEN = 4
OUTPUT_TOKENS_BASE = 256
OUTPUT_TOKENS_PER_PAGE = 640

SYSTEM_PROMPT = f"""\
You extract structured data from OCR'd pages of financial documents.
The pages follow, each between <page number="N"> and </page>; N is the page's number in the
original document. OCR may have damaged some words: read through the noise, but never invent
a value that is not printed. Leave a field null (or an empty list) when these pages do not show it.
List table rows (such as transactions) once each, in the order printed, across page breaks.
In `{SOURCE_PAGES}` give, for every field you filled, the page numbers it was read from.
Answer only by calling the tool `{TOOL_NAME}` exactly once."""


@dataclass(frozen=True)
class Page:
    """One page of a batch: its position in the account, its number in the document, its text."""

    index: int
    number: int
    text: str


def estimate_tokens(text: str) -> int:
    """About four characters per token: the simulator counts the same way."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def render_pages(pages: Sequence[Page]) -> str:
    return "\n".join(f'<page number="{p.number}">\n{p.text}\n</page>' for p in pages)


def tool_config(schema: ExtractionSchema) -> dict[str, Any]:
    return {
        "tools": [
            {
                "toolSpec": {
                    "name": TOOL_NAME,
                    "description": f"Record the {schema.name} fields read from the pages.",
                    "inputSchema": {"json": schema.tool_input_schema()},
                }
            }
        ],
        "toolChoice": {"tool": {"name": TOOL_NAME}},
    }


def static_prefix_tokens(schema: ExtractionSchema) -> int:
    """Tokens of what every call repeats (tools + system), the part a cache point can cover."""
    return estimate_tokens(SYSTEM_PROMPT) + estimate_tokens(json.dumps(tool_config(schema)))


def max_tokens_for(pages: int, ceiling: int) -> int:
    return min(ceiling, OUTPUT_TOKENS_BASE + OUTPUT_TOKENS_PER_PAGE * pages)


def build_request(
    model_id: str,
    schema: ExtractionSchema,
    pages: Sequence[Page],
    max_tokens: int,
    cache_min_tokens: int | None,
) -> dict[str, Any]:
    """Keyword arguments of `bedrock-runtime.converse` for this batch."""
    if not pages:
        raise ValueError("a batch has at least one page")
    system: list[dict[str, Any]] = [{"text": SYSTEM_PROMPT}]
    if cache_min_tokens is not None and static_prefix_tokens(schema) >= cache_min_tokens:
        system.append({"cachePoint": {"type": "default"}})
    return {
        "modelId": model_id,
        "system": system,
        "messages": [{"role": "user", "content": [{"text": render_pages(pages)}]}],
        "toolConfig": tool_config(schema),
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.0},
    }


def repair_messages(
    request: dict[str, Any], tool_use: dict[str, Any], errors: Sequence[str]
) -> list[dict[str, Any]]:
    """The conversation that asks the model once to fix a tool input that failed validation."""
    feedback = "The tool input did not validate:\n" + "\n".join(f"- {e}" for e in errors)
    return [
        *request["messages"],
        {"role": "assistant", "content": [{"toolUse": tool_use}]},
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": tool_use.get("toolUseId", "unknown"),
                        "content": [{"text": feedback + "\nCall the tool again with corrected input."}],
                        "status": "error",
                    }
                }
            ],
        },
    ]
