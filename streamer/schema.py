"""What to extract: a pydantic model or a JSON Schema, each field declaring how batch results merge."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MERGE_KEY = "x-merge"
SOURCE_PAGES = "source_pages"


class Merge(StrEnum):
    """How values of one field from several batches combine, in page order."""

    FIRST = "first"  # first non-null value; later different values are conflicts
    LAST = "last"  # last non-null value; earlier different values are conflicts
    CONCAT = "concat"  # lists joined in page order
    MAX = "max"
    MIN = "min"


def merge(strategy: Merge) -> dict[str, Any]:
    return {MERGE_KEY: strategy.value}


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: date
    description: str = Field(max_length=500)
    amount: float = Field(description="negative for debits")
    balance: float | None = Field(None, description="running balance when printed")


class BankStatement(BaseModel):
    """The default extraction: one bank account's statement."""

    model_config = ConfigDict(extra="forbid")

    bank_name: str | None = Field(None, json_schema_extra=merge(Merge.FIRST))
    account_holder: str | None = Field(None, json_schema_extra=merge(Merge.FIRST))
    account_number: str | None = Field(None, json_schema_extra=merge(Merge.FIRST))
    currency: str | None = Field(None, description="ISO 4217 code", json_schema_extra=merge(Merge.FIRST))
    statement_period_start: date | None = Field(None, json_schema_extra=merge(Merge.FIRST))
    statement_period_end: date | None = Field(None, json_schema_extra=merge(Merge.FIRST))
    opening_balance: float | None = Field(None, json_schema_extra=merge(Merge.FIRST))
    closing_balance: float | None = Field(None, json_schema_extra=merge(Merge.LAST))
    transactions: list[Transaction] = Field(default_factory=list, json_schema_extra=merge(Merge.CONCAT))


class SchemaError(Exception):
    """Tool input that does not fit the schema; `errors` name fields, never values."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ExtractionSchema:
    name: str
    json_schema: dict[str, Any]
    strategies: dict[str, Merge]
    validate: Callable[[dict[str, Any]], dict[str, Any]]

    @property
    def is_bank_statement(self) -> bool:
        """The balance check applies when the fields it needs exist."""
        return {"opening_balance", "closing_balance", "transactions"} <= set(self.strategies)

    def tool_input_schema(self) -> dict[str, Any]:
        """The schema plus `source_pages`, where the model says which page each field came from."""
        schema: dict[str, Any] = json.loads(json.dumps(self.json_schema))
        schema.setdefault("properties", {})[SOURCE_PAGES] = {
            "type": "object",
            "description": "for each field filled: the page numbers it was read from",
            "additionalProperties": {"type": "array", "items": {"type": "integer"}},
        }
        return schema


def _strategies(json_schema: dict[str, Any]) -> dict[str, Merge]:
    out = {}
    for name, prop in json_schema.get("properties", {}).items():
        declared = prop.get(MERGE_KEY)
        is_list = prop.get("type") == "array" or any(p.get("type") == "array" for p in prop.get("anyOf", []))
        out[name] = Merge(declared) if declared else (Merge.CONCAT if is_list else Merge.FIRST)
    return out


def from_model(model: type[BaseModel]) -> ExtractionSchema:
    def validate(data: dict[str, Any]) -> dict[str, Any]:
        try:
            return model.model_validate(data).model_dump(mode="json")
        except ValidationError as exc:
            errs = [f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()]
            raise SchemaError(errs) from None

    js = model.model_json_schema()
    return ExtractionSchema(model.__name__, js, _strategies(js), validate)


def from_json_schema(js: dict[str, Any], name: str) -> ExtractionSchema:
    validator_cls = jsonschema.validators.validator_for(js)
    validator_cls.check_schema(js)
    validator = validator_cls(js)
    props = js.get("properties", {})

    def validate(data: dict[str, Any]) -> dict[str, Any]:
        errs = [
            f"{'.'.join(str(p) for p in e.absolute_path) or 'input'}: breaks '{e.validator}'"
            for e in validator.iter_errors(data)
        ]
        if errs:
            raise SchemaError(errs)
        return {k: data.get(k) for k in props}

    return ExtractionSchema(name, js, _strategies(js), validate)


def load(spec: str) -> ExtractionSchema:
    """`bank_statement`, `package.module:Model`, or a path to a JSON Schema file."""
    if spec == "bank_statement":
        return from_model(BankStatement)
    if spec.endswith(".json"):
        path = Path(spec)
        try:
            return from_json_schema(json.loads(path.read_text()), path.stem)
        except (OSError, ValueError, jsonschema.SchemaError) as exc:
            raise ValueError(f"extraction schema {spec}: {exc}") from None
    module, _, attr = spec.partition(":")
    try:
        model = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"extraction schema {spec!r}: {exc}") from None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ValueError(f"extraction schema {spec!r} is not a pydantic model")
    return from_model(model)
