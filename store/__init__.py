"""Persistence: SQLModel tables, the engine, and query functions that never commit on their own."""
