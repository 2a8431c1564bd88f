"""Alembic environment: migrations run on the connection pullkeeper hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from pullkeeper.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    connection = engine.connect()
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
