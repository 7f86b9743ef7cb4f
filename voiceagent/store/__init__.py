"""Stores behind narrow seams, each a Protocol with a memory and a shared implementation:

- call_state.py: per-call plan and outcome (failover/reconnect history) for every instance;
- clips.py (+ clips_memory.py): audio clips ConversationRelay fetches for `play`;
- session_budget.py: leases on the account's concurrent Inworld Realtime sessions;
- shared.py: the Redis client they share and its up/down health; factory.py picks them;
- records.py (+ record_buffer.py, record_writer.py, rows.py, schema.py, reading.py): call and
  turn records.
"""
