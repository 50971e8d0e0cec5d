"""Where the store is: ``CRM_DATABASE_URL``, then ``.streamlit/secrets.toml``, then data/crm.db."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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
    url = _read_secrets(secrets_path).get("connections", {}).get("crm", {}).get("url")
    if url:
        return str(url)
    return default_url()


_OIDC_KEYS = ("client_id", "client_secret", "server_metadata_url")
"""What Streamlit's st.login needs of a provider besides [auth]'s redirect_uri and cookie_secret."""


def oidc_providers(secrets_path: Path = SECRETS_PATH) -> tuple[tuple[str | None, str], ...]:
    """The OpenID Connect providers ``st.login`` can use, from ``[auth]`` in ``.streamlit/secrets.toml``:
    (provider, label) pairs. A provider set up in ``[auth]`` itself is ``None`` (``st.login()``), labelled
    with its metadata URL's host; one in ``[auth.NAME]`` is ``NAME`` (``st.login("NAME")``), labelled NAME
    capitalised. No ``[auth]``, or none complete (client id, secret and metadata URL, plus ``redirect_uri``
    and ``cookie_secret`` in ``[auth]``): an empty tuple, and the app signs in local users only."""
    section = _read_secrets(secrets_path).get("auth")
    if not isinstance(section, dict) or not all(section.get(k) for k in ("redirect_uri", "cookie_secret")):
        return ()
    found: list[tuple[str | None, str]] = []
    if all(section.get(k) for k in _OIDC_KEYS):
        found.append((None, urlparse(str(section["server_metadata_url"])).hostname or "single sign-on"))
    for name, provider in section.items():
        if isinstance(provider, dict) and all(provider.get(k) for k in _OIDC_KEYS):
            found.append((name, name.replace("_", " ").capitalize()))
    return tuple(found)


def _read_secrets(secrets_path: Path) -> dict[str, Any]:
    if not secrets_path.is_file():
        return {}
    try:
        return tomllib.loads(secrets_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{secrets_path} is not valid TOML: {exc}") from None


def is_embedded(url: str) -> bool:
    """True when the URL is the embedded demo store (filled with demo data when empty)."""
    return url == default_url()
