"""HTTP and WebSocket handlers. They authenticate, move bytes and hand off to a mode."""
