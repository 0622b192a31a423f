"""The one configuration class: every knob is an environment variable `STREAMER_<NAME>`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "STREAMER_"
KAFKA_PREFIX = ENV_PREFIX + "KAFKA_"
DEFAULT_MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


class ConfigError(Exception):
    """Bad configuration, reported as one message naming the variables."""


class _KafkaPassthrough(PydanticBaseSettingsSource):
    """`STREAMER_KAFKA_SASL_USERNAME=x` -> librdkafka `sasl.username=x`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        props = {
            k[len(KAFKA_PREFIX) :].lower().replace("_", "."): v
            for k, v in self._environ.items()
            if k.upper().startswith(KAFKA_PREFIX) and len(k) > len(KAFKA_PREFIX)
        }
        return {"kafka": props} if props else {}


class Settings(BaseSettings):
    """All settings of streamer; README's settings table lists the same names and defaults."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Kafka
    bootstrap_servers: str = Field("localhost:9092", min_length=1, description="Kafka bootstrap servers")
    group_id: str = Field("streamer", min_length=1, max_length=255, description="consumer group id")
    input_topic: str = Field("ocr.pages", min_length=1, max_length=249, description="page events topic")
    output_topic: str = Field(
        "accounts.extracted", min_length=1, max_length=249, description="account records topic"
    )
    dlq_topic: str = Field("ocr.pages.dlq", min_length=1, max_length=249, description="dead-letter topic")
    group_protocol: Literal["classic", "consumer"] = Field(
        "classic", description="classic (cooperative-sticky) or consumer (KIP-848)"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security.protocol"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"] | None = Field(
        None, description="SASL mechanism; AWS_MSK_IAM signs OAUTHBEARER tokens with the AWS credentials"
    )
    sasl_username: str | None = Field(None, max_length=1024, description="SASL username (PLAIN/SCRAM)")
    sasl_password: SecretStr | None = Field(None, description="SASL password (PLAIN/SCRAM)")
    ssl_ca_location: str | None = Field(None, max_length=4096, description="CA bundle file for TLS")
    msk_iam_region: str | None = Field(
        None, max_length=64, description="region for MSK IAM tokens (default: the AWS region)"
    )
    kafka: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="librdkafka properties from STREAMER_KAFKA_<PROPERTY>, dots written as underscores",
    )
    commit_interval_s: float = Field(1.0, ge=0.05, le=60, description="seconds between offset commits")

    # Pipeline
    batch_max_pages: int = Field(2, ge=1, le=64, description="most pages in one LLM call")
    batch_max_tokens: int = Field(
        8000, ge=100, le=200_000, description="most estimated input tokens in one LLM call"
    )
    max_in_flight: int = Field(8, ge=1, le=512, description="most concurrent LLM calls")
    ready_queue_size: int = Field(
        64, ge=1, le=10_000, description="batches waiting for a call slot before intake pauses"
    )
    max_buffered_bytes: int = Field(
        64 * 1024 * 1024, ge=1024 * 1024, le=16 * 1024**3, description="page text held before intake pauses"
    )
    max_page_bytes: int = Field(
        1024 * 1024, ge=1024, le=16 * 1024 * 1024, description="largest page event value accepted"
    )
    completion_timeout_s: float = Field(
        300.0, ge=0.1, le=7 * 86400, description="seconds without a new page before an account is incomplete"
    )
    finished_window: int = Field(
        100_000, ge=0, le=10_000_000, description="finished accounts remembered to count late duplicates"
    )
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600, description="wait for in-flight calls on SIGTERM")
    idle_exit_s: float = Field(
        2.0, ge=0.1, le=3600, description="with --until-idle: idle seconds before exiting"
    )

    # Bedrock
    bedrock_model_id: str = Field(DEFAULT_MODEL_ID, min_length=1, max_length=2048, description="model id")
    bedrock_endpoint_url: str | None = Field(
        None, pattern=r"^https?://", description="Bedrock Runtime endpoint (the simulator for local runs)"
    )
    bedrock_region: str | None = Field(
        None, max_length=64, description="AWS region (default AWS_REGION, else us-east-1)"
    )
    bedrock_connect_timeout_s: float = Field(5.0, gt=0, le=120, description="connect timeout")
    bedrock_read_timeout_s: float = Field(60.0, gt=0, le=900, description="read timeout")
    bedrock_max_attempts: int = Field(6, ge=1, le=20, description="attempts per call, first one included")
    bedrock_retry_deadline_s: float = Field(
        120.0, gt=0, le=3600, description="give up retrying a call after this"
    )
    bedrock_backoff_base_s: float = Field(0.25, gt=0, le=60, description="first backoff (full jitter)")
    bedrock_backoff_max_s: float = Field(20.0, gt=0, le=600, description="longest backoff")
    bedrock_max_tokens: int = Field(4096, ge=64, le=64_000, description="maxTokens ceiling per call")
    extraction_schema: str = Field(
        "bank_statement",
        min_length=1,
        description="bank_statement, module:PydanticModel, or a JSON Schema file path",
    )
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="JSON price overrides per model id (USD per million tokens)"
    )

    # Operations
    http_host: str = Field("0.0.0.0", description="bind address of /metrics, /healthz, /readyz")
    http_port: int = Field(8080, ge=0, le=65535, description="port of /metrics, /healthz, /readyz (0: any)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    log_format: Literal["json", "text"] = Field("json", description="json lines or text for a terminal")
    healthz_max_loop_age_s: float = Field(
        30.0, gt=0, le=3600, description="/healthz fails if the poll loop stalls this long"
    )

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.bedrock_backoff_base_s > self.bedrock_backoff_max_s:
            raise ValueError("bedrock_backoff_base_s must not exceed bedrock_backoff_max_s")
        if self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError("sasl_username and sasl_password are required for this sasl_mechanism")
        if self.sasl_mechanism and not self.security_protocol.startswith("SASL"):
            raise ValueError("sasl_mechanism needs security_protocol SASL_SSL or SASL_PLAINTEXT")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _KafkaPassthrough(settings_cls, os.environ)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and keyword overrides), or one ConfigError naming the variables."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        name = ENV_PREFIX + loc[0].upper() if loc else "settings"
        if loc and loc[0] == "kafka" and len(loc) > 1:
            name = KAFKA_PREFIX + loc[1].upper().replace(".", "_")
        secret = "PASSWORD" in name or name.startswith(KAFKA_PREFIX) or not loc
        value = "" if secret else f" (got {err.get('input')!r:.80})"
        lines.append(f"{name}: {err['msg']}{value}")
    return "invalid configuration: " + "; ".join(lines)
