"""Process-wide configuration, read from the environment (prefix ``METASYNC_``) or ``.env``.

    from resources.settings import get_settings
    settings = get_settings()
    settings.database_url      # sqlite:///.metasync/metasync.db unless METASYNC_DATABASE_URL is set

Secrets are ``SecretStr`` so that printing the settings never shows them.
"""

import json
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STATE_DIR = Path(".metasync")


class MetasyncSettings(BaseSettings):
    """Everything metasync reads from its environment. The README lists each variable."""

    model_config = SettingsConfigDict(env_prefix="METASYNC_", env_file=".env", extra="ignore")

    state_dir: Path = Field(default=STATE_DIR, description="Local files: SQLite, vault key.")
    database_url: str = Field(
        default="", description="SQLAlchemy URL of the metasync database (default: SQLite file)."
    )
    oms_database_url: str = Field(
        default="", description="SQLAlchemy URL of the reference OMS (default: SQLite file)."
    )
    graph_base_url: str = Field(default="https://graph.facebook.com")
    graph_version: str = Field(default="v25.0", pattern=r"^v\d+\.\d+$")
    app_secret: SecretStr | None = Field(
        default=None, description="Meta app secret; when set every call carries appsecret_proof."
    )
    vault_key: SecretStr | None = Field(
        default=None,
        description="Fernet key encrypting shop tokens at rest (default: generated key file).",
    )
    graph_timeout_seconds: float = 20.0
    graph_max_attempts: int = 5

    @field_validator("database_url", "oms_database_url")
    @classmethod
    def _postgres_driver(cls, url: str) -> str:
        """`postgres://` and `postgresql://` (as hosting providers print them) get the psycopg2
        driver: SQLAlchemy knows no `postgres` dialect, and SQLAlchemy 2.1 would map the bare
        scheme to psycopg 3, which dagster-postgres does not run on."""
        for scheme in ("postgres://", "postgresql://"):
            if url.startswith(scheme):
                return "postgresql+psycopg2://" + url.removeprefix(scheme)
        return url

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'metasync.db'}"

    def resolved_oms_database_url(self) -> str:
        return self.oms_database_url or f"sqlite:///{self.state_dir / 'oms.db'}"


#: Written by `metasync demo` into its folder: where that state's sandbox and databases are.
DEMO_ENV_FILE = "demo.env"


@lru_cache(maxsize=1)
def get_settings() -> MetasyncSettings:
    """The environment's settings. When the state folder is a demo's (it holds `demo.env`), the
    demo's sandbox address and databases apply unless the environment names others: a command
    pointed at the demo's state (METASYNC_STATE_DIR=.metasync/demo) talks to its sandbox, never
    to graph.facebook.com with the demo's tokens."""
    settings = MetasyncSettings()
    demo = demo_environment(settings.state_dir)
    chosen = {
        name.removeprefix("METASYNC_").lower(): value
        for name, value in demo.items()
        if name.startswith("METASYNC_") and name != "METASYNC_STATE_DIR" and name not in os.environ
    }
    return MetasyncSettings(**chosen) if chosen else settings


def demo_environment(state_dir: Path) -> dict[str, str]:
    """The variables a demo run saved in `state_dir` (empty when it is not a demo's folder)."""
    saved = state_dir / DEMO_ENV_FILE
    if not saved.is_file():
        return {}
    values = json.loads(saved.read_text())
    return {str(name): str(value) for name, value in values.items()}
