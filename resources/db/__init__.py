"""The metasync database: SQLite by default, Postgres by URL.

    db = MetasyncDatabase.from_settings()
    db.create_schema()
    with db.begin() as conn:
        conn.execute(shops.select())

Every domain's tables hang off ``resources.db.schema.metadata``; importing this package imports
them all, so ``create_schema`` always builds the complete schema.
"""

import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from resources.db.schema import metadata
from resources.settings import get_settings

logger = logging.getLogger(__name__)

# Domain table modules register themselves on `metadata` when imported. A module that does not
# exist yet is skipped so the skeleton stays importable while domains grow.
_DOMAIN_TABLE_MODULES = (
    "resources.db.catalog_tables",
    "resources.db.orders_tables",
    "resources.db.finance_tables",
    "resources.db.signals_tables",
    "resources.db.ops_tables",
)
for _module in _DOMAIN_TABLE_MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise


def create_database_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder, WAL and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql:// URL; be explicit.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return create_engine(parsed, pool_pre_ping=True)


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class MetasyncDatabase:
    """A thin handle on the metasync database; adapters take it and run their own SQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_database_engine(url)

    @classmethod
    def from_settings(cls) -> "MetasyncDatabase":
        return cls(get_settings().resolved_database_url())

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        # TODO(migrations): create_all builds missing tables only; a column change to an existing
        # table needs a versioned migration (Alembic) before the schema may evolve in production.
        metadata.create_all(self.engine)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed on success, rolled back on any exception."""
        with self.engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
