"""Outbound calls: the rules a dial must pass, pacing, the dialer, and the outbound plan."""
