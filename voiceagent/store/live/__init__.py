"""Live shared state of calls in flight, each a Protocol with a memory and a Redis implementation
(any instance can serve any request of a call):

- call_state.py: per-call plan and outcome (failover/reconnect history);
- call_context.py: per-call facts (from, to, direction) and the business's call context;
- clips.py (+ clips_memory.py): audio clips ConversationRelay fetches for `play`;
- realtime_budget.py: leases on the account's concurrent Inworld Realtime sessions;
- redis_backend.py: the Redis client they share and its up/down health; factory.py picks them.
"""
