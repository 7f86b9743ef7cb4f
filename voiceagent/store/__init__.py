"""Stores behind narrow seams: clips for ConversationRelay `play` (clips.py: memory or Redis)
and, alongside, call and turn records. Each store is a Protocol with swappable backends.
"""
