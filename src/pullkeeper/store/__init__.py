"""Adapter for the database: tables, migrations, sessions, and encryption of secret fields."""
