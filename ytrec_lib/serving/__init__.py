"""Serving: retrieval indexes, the SQLite embedding store, the store server and the two-stage
system (no torch)."""
