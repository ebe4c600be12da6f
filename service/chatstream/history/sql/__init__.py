"""Chat history in a SQL database (PostgreSQL in production, an embedded SQLite file by default).

Every turn reads the conversation from the store and writes back to it, so any replica can serve
any turn and a dead pod loses at most the last second of a reply (see ``turns``). A database that
cannot be reached turns into 503 ``database_unavailable`` (see ``store``).

Modules: ``store`` (engine, schema, readiness, transactions, ticker), ``lookup`` (the caller and
their conversation), ``turns`` (begin/stream/finish a turn), ``conversations`` (the seed's endpoints
and ``/v1/conversations``), ``views`` (rows as JSON), ``prune``, ``tables`` (shared table handles).
"""

from .handler import PostgresRequestHandler, SQLRequestHandler
from .prune import prune_conversations
from .turns import SqlTurn

__all__ = ["PostgresRequestHandler", "SQLRequestHandler", "SqlTurn", "prune_conversations"]
