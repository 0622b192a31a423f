from __future__ import annotations

import pytest

from streamer import kafka_config
from streamer.settings import ConfigError, Settings, load_settings


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.bootstrap_servers == "localhost:9092"
    assert s.group_id == "streamer"
    assert (s.input_topic, s.output_topic, s.dlq_topic) == (
        "ocr.pages",
        "accounts.extracted",
        "ocr.pages.dlq",
    )
    assert s.batch_max_pages == 2 and s.max_in_flight == 8


def test_environment_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMER_MAX_IN_FLIGHT", "32")
    monkeypatch.setenv("STREAMER_INPUT_TOPIC", "pages")
    s = load_settings()
    assert s.max_in_flight == 32 and s.input_topic == "pages"


def test_out_of_bound_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMER_MAX_IN_FLIGHT", "100000")
    monkeypatch.setenv("STREAMER_BATCH_MAX_PAGES", "zero")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert msg.startswith("invalid configuration:")
    assert "STREAMER_MAX_IN_FLIGHT" in msg and "STREAMER_BATCH_MAX_PAGES" in msg
    assert "\n" not in msg


def test_kafka_passthrough_maps_underscores_to_dots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAMER_KAFKA_SASL_PASSWORD", "hunter2")
    s = load_settings()
    conf = kafka_config.consumer(s)
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.password"] == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    assert "hunter2" not in repr(kafka_config.redacted(conf))


def test_scram_needs_credentials_and_keeps_password_secret() -> None:
    with pytest.raises(ConfigError, match="sasl_username"):
        load_settings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512")
    s = load_settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="s3cret-value",
        ssl_ca_location="/etc/ssl/ca.pem",
    )
    conf = kafka_config.producer(s)
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "svc" and conf["sasl.password"] == "s3cret-value"
    assert conf["ssl.ca.location"] == "/etc/ssl/ca.pem"
    assert conf["enable.idempotence"] is True and conf["acks"] == "all"
    assert "s3cret-value" not in repr(s)
    assert "s3cret-value" not in repr(kafka_config.redacted(conf))


def test_msk_iam_uses_oauthbearer_with_a_token_callback() -> None:
    s = load_settings(security_protocol="SASL_SSL", sasl_mechanism="AWS_MSK_IAM", msk_iam_region="eu-west-1")
    conf = kafka_config.consumer(s)
    assert conf["sasl.mechanism"] == "OAUTHBEARER"
    assert callable(conf["oauth_cb"])
    assert "sasl.password" not in conf


def test_sasl_without_sasl_protocol_is_rejected() -> None:
    with pytest.raises(ConfigError, match="security_protocol"):
        load_settings(sasl_mechanism="AWS_MSK_IAM")


def test_consumer_commits_manually_and_cooperatively() -> None:
    conf = kafka_config.consumer(Settings())
    assert conf["enable.auto.commit"] is False and conf["enable.auto.offset.store"] is False
    assert conf["partition.assignment.strategy"] == "cooperative-sticky"
    kip848 = kafka_config.consumer(Settings(group_protocol="consumer"))
    assert kip848["group.protocol"] == "consumer" and "partition.assignment.strategy" not in kip848


def test_every_setting_has_a_default_and_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert not field.is_required(), name
