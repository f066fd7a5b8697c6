"""Every setting Truce reads, from ``TRUCE_*`` environment variables and ``./.env``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.people.decisions import StatusMapping, mapping_from

DEFAULT_DATABASE_URL = "sqlite:///./.truce/truce.db"


class SalesforceSettings(BaseModel):
    """``TRUCE_SALESFORCE_*``: a token, or username-password, or client credentials."""

    instance_url: str | None = None
    access_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    domain: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    login_url: str = "https://login.salesforce.com"
    api_version: str = "62.0"
    ca_bundle: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(
            (self.instance_url and self.access_token)
            or (self.username and self.password)
            or (self.client_id and self.client_secret)
        )


class HubSpotSettings(BaseModel):
    """``TRUCE_HUBSPOT_*``: a private-app token and, for webhooks, the app's client secret."""

    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    client_secret: SecretStr | None = None

    @property
    def enabled(self) -> bool:
        return self.access_token is not None


class Settings(BaseSettings):
    """One object holds them all; build it with :func:`get_settings`, never at import."""

    model_config = SettingsConfigDict(
        env_prefix="TRUCE_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    database_url: str = DEFAULT_DATABASE_URL
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    breach_webhook_url: str | None = None
    breach_webhook_secret: SecretStr | None = None
    admin_api_key: SecretStr | None = None
    sync_interval_seconds: int = Field(default=300, ge=5)
    sla_scan_interval_seconds: int = Field(default=60, ge=5)
    mql_cooldown_days: int = Field(default=30, ge=0)
    rejection_reasons: list[str] = Field(default_factory=lambda: [
        "No Budget", "Not Decision Maker", "Bad Timing", "Competitor", "Duplicate", "Bad Data",
        "Unqualified", "UNQUALIFIED", "BAD_TIMING"])
    large_deal_threshold: float = Field(default=2_000_000, gt=0)
    status_mapping: dict[Literal["salesforce", "hubspot"],
                         dict[Literal["accepted", "rejected"], list[str]]] | None = None
    recycle_unanswered_after_days: int = Field(default=0, ge=0)

    def decisions(self) -> StatusMapping:
        """The CRM statuses that mean accepted or rejected, defaults plus overrides."""
        return mapping_from(self.status_mapping)  # type: ignore[arg-type]

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("admin_api_key")
    @classmethod
    def _strong_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    def enabled_sources(self) -> list[str]:
        sources = []
        if self.salesforce.enabled:
            sources.append("salesforce")
        if self.hubspot.enabled:
            sources.append("hubspot")
        return sources


def get_settings(**overrides: object) -> Settings:
    """Read the environment now (tests pass overrides instead of touching it)."""
    return Settings(**overrides)  # type: ignore[arg-type]


def describe_error(exc: Exception) -> str:
    """Turn a settings ValidationError into lines naming the variable to fix."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for err in exc.errors():
        var = "TRUCE_" + "_".join(str(p) for p in err["loc"]).upper()
        lines.append(f"{var}: {err['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)
