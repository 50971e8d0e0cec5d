"""Where the store is: ``CRM_DATABASE_URL``, then ``.streamlit/secrets.toml``, then data/crm.db."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = ROOT / "data" / "crm.db"
SECRETS_PATH = ROOT / ".streamlit" / "secrets.toml"


class ConfigError(Exception):
    """The configuration cannot be used (say, a secrets file that is not TOML)."""


def default_url() -> str:
    """The embedded SQLite store's URL (an absolute path, so any cwd works)."""
    return f"sqlite:///{DEFAULT_DB_PATH}"


def resolve_database_url(explicit: str | None = None, secrets_path: Path = SECRETS_PATH) -> str:
    """The store URL: explicit, else env, else secrets ``[connections.crm] url``, else embedded."""
    if explicit:
        return explicit
    env = os.environ.get("CRM_DATABASE_URL", "").strip()
    if env:
        return env
    if secrets_path.is_file():
        try:
            secrets = tomllib.loads(secrets_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{secrets_path} is not valid TOML: {exc}") from None
        url = secrets.get("connections", {}).get("crm", {}).get("url")
        if url:
            return str(url)
    return default_url()


def is_embedded(url: str) -> bool:
    """True when the URL is the embedded demo store (filled with demo data when empty)."""
    return url == default_url()
