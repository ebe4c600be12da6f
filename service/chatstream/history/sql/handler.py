"""The SQL request handler: the store's turn writer and conversation requests in one class."""

from __future__ import annotations

from .conversations import SqlConversations
from .turns import SqlTurns


class PostgresRequestHandler(SqlTurns, SqlConversations):
    """Keeps every conversation in the database (``ChatStream(request_handler=...)``).

    ``database_url``: an SQLAlchemy URL (``postgresql+asyncpg://…``; ``postgresql://`` is accepted);
    without one, ``settings.database_url``, else the embedded SQLite file ``settings.sqlite_path``.
    """


#: the name the seed's docs promise, and a backend-neutral alias
SQLRequestHandler = PostgresRequestHandler
