"""Persistence only: engines, tables, every SQL statement, blob storage and secrets at rest."""

__all__: list[str] = []
