"""Call and turn records in SQL (SQLite or PostgreSQL), written off the event loop:

- sink.py: `RecordingSink`, what the app hands finished calls and turns to;
- buffer.py, writer.py: the bounded buffer and the writer thread that drains it;
- rows.py, schema.py (+ migrations/): the rows and tables (and the call-events outbox);
  reading.py: queries for reports; call_story.py: one call's whole story, the call list.
"""
