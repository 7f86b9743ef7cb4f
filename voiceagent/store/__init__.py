"""Stores behind narrow seams: `live/` holds the shared state of calls in flight (memory or
Redis), `records/` the call and turn records (SQLite or PostgreSQL) reports read."""
