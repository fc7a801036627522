import pytest
from pydantic import ValidationError

from xietong.config import SecuritySettings, Settings
from xietong.core.i18n import negotiate, translate


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("fr-FR,en;q=0.5", "en"),
        ("fr-FR", "zh_CN"),
        ("en;q=0.2,zh;q=0.8", "zh_CN"),
        ("en;q=abc", "zh_CN"),
    ],
)
def test_accept_language(header: str | None, expected: str) -> None:
    assert negotiate(header, "zh_CN") == expected


def test_catalogs_translate_to_chinese_and_keep_english() -> None:
    assert translate("en", "Not found.") == "Not found."
    assert translate("zh_CN", "Not found.") != "Not found."


def test_production_refuses_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(env="production", database={"url": "postgresql://db/x"})  # type: ignore[arg-type]


def test_production_with_real_secret_requires_totp_for_admins() -> None:
    settings = Settings(
        env="production",
        database={"url": "postgresql://db/x"},  # type: ignore[arg-type]
        security=SecuritySettings(secret_key="k" * 40, pii_key="p" * 40),
    )
    assert settings.security.require_totp_for_admins
    assert settings.security.cookie_secure


def test_sections_read_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XIETONG_DATABASE_URL", "postgresql+psycopg://u@h/d")
    monkeypatch.setenv("XIETONG_SECURITY_MAX_FAILED_LOGINS", "7")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@h/d"
    assert settings.security.max_failed_logins == 7


def test_embedded_default_is_sqlite_in_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XIETONG_DATABASE_URL", raising=False)
    settings = Settings(data_dir="var")  # type: ignore[arg-type]
    assert settings.database_url == "sqlite:///var/xietong.sqlite3"
    assert str(settings.blob_root) == "var/blobs"
