"""Call and turn records in SQL (SQLite or PostgreSQL), written off the event loop:

- sink.py: `RecordingSink`, what the app hands finished calls and turns to;
- buffer.py, writer.py: the bounded buffer and the writer thread that drains it;
- rows.py, schema.py (+ migrations/): the rows and tables; reading.py: queries for reports.
"""
