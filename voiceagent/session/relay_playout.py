"""When the caller will have heard everything a relay call sent, estimated. No I/O.

ConversationRelay sends no playback-complete event (docs/protocols.md, Twilio §2.3: none for
`play`), so an agent that ends the call after its goodbye must estimate when the goodbye finished
playing. Clips play one after another, each once Twilio has fetched it (our fetch is held open until
the clip is complete): a clip ends at `max(previous end, its fetch) + its duration`. Text
tokens that Twilio's own TTS speaks end at `max(previous end, sent) + their estimated time`.
A clip announced but not fetched yet keeps the estimate open. An interrupt stops playback.
"""

from __future__ import annotations

from dataclasses import dataclass

END_MARGIN_S = 0.3
"""Added to the estimate before the call is ended: network and player slack."""


@dataclass(slots=True)
class Playout:
    """The estimated end of what the caller is hearing (monotonic seconds)."""

    ends_at: float = 0.0
    unfetched: int = 0  # clips announced (`play` sent) and not fetched yet

    def clip_announced(self) -> None:
        self.unfetched += 1

    def clip_fetched(self, duration_ms: float, now: float) -> None:
        """Twilio finished fetching a clip of `duration_ms`: it plays after what is queued."""
        self.unfetched = max(0, self.unfetched - 1)
        self.ends_at = max(self.ends_at, now) + duration_ms / 1000.0

    def spoken(self, duration_ms: float, now: float) -> None:
        """Text handed to Twilio's TTS, taking about `duration_ms` to speak."""
        self.ends_at = max(self.ends_at, now) + duration_ms / 1000.0

    def interrupted(self, now: float) -> None:
        """The caller interrupted: nothing queued plays any more."""
        self.ends_at, self.unfetched = now, 0

    def remaining_s(self, now: float) -> float | None:
        """Seconds until everything sent was heard (with END_MARGIN_S); None while a clip
        is still to be fetched (its length and start are not known yet)."""
        if self.unfetched:
            return None
        return max(0.0, self.ends_at + END_MARGIN_S - now)
