"""Settings: environment parsing and start-up validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings


def test_list_settings_accept_comma_separated_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULTURESAFE_API_KEYS", "k1, k2")
    monkeypatch.setenv("CULTURESAFE_ADMIN_API_KEYS", '["a1"]')
    monkeypatch.setenv("CULTURESAFE_CORS_ORIGINS", "https://a.example,https://b.example")
    settings = Settings()
    assert [k.get_secret_value() for k in settings.api_keys] == ["k1", "k2"]
    assert [k.get_secret_value() for k in settings.admin_api_keys] == ["a1"]
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_empty_list_setting_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULTURESAFE_API_KEYS", "")
    assert Settings().api_keys == ()


def test_keys_are_secret_in_repr() -> None:
    settings = Settings(api_keys=("sk-very-secret",))
    assert "sk-very-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("upstream_base_url", "ftp://x", "must start with http"),
        ("data_dir", Path("/nonexistent/kb"), "does not exist"),
        ("embedded_model_path", Path("/nonexistent/model.gguf"), "is not a file"),
        ("top_k", 0, "greater than or equal to 1"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(field: str, value: object, message: str) -> None:
    kwargs: dict[str, object] = {field: value}
    if field == "upstream_base_url":
        kwargs["backend"] = "upstream"
    with pytest.raises(ValidationError, match=message):
        Settings(**kwargs)  # type: ignore[arg-type]
