"""Run Alembic's migrations from code: ``chatstream migrate``, auto-migration at start, and tests.

``alembic.ini`` and ``migrations/`` live at the top of the repository (and in the image's working
directory): we look in ``CHATSTREAM_ALEMBIC_CONFIG``, then the current directory, then the source
checkout this package was installed from.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from .database import async_url

SOURCE_CHECKOUT = Path(__file__).resolve().parents[3]

# Alembic announces every plugin it loads at INFO: noise in the service's log at each start.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class MigrationsNotFound(RuntimeError):
    pass


def find_alembic_ini() -> Path:
    candidates = [os.environ.get("CHATSTREAM_ALEMBIC_CONFIG"), "alembic.ini", SOURCE_CHECKOUT / "alembic.ini"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    raise MigrationsNotFound(
        "alembic.ini not found: run from the directory that holds it (the image's /app or the source "
        "checkout) or set CHATSTREAM_ALEMBIC_CONFIG"
    )


def alembic_config(url: str, timeout: float = 10.0) -> Config:
    config = Config(str(find_alembic_ini()))
    config.attributes["database_url"] = async_url(url)
    config.attributes["timeout"] = timeout
    return config


def head_revision() -> str | None:
    try:
        return ScriptDirectory.from_config(Config(str(find_alembic_ini()))).get_current_head()
    except MigrationsNotFound:
        return None


def upgrade_to_head(url: str, timeout: float = 10.0) -> None:
    """Bring the database to the newest schema (idempotent). Blocking: call it from a thread."""
    command.upgrade(alembic_config(url, timeout), "head")


def downgrade_to(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
