"""Wire-protocol codecs: pydantic models plus ``parse_*`` / ``dump`` functions, no I/O.

``twilio_media`` (Twilio Media Streams, ``event``-tagged JSON frames), ``conversation_relay``
(Twilio ConversationRelay, ``type``-tagged text messages), ``inworld_realtime`` (Inworld
Realtime client and server events; it re-exports ``inworld_realtime_shapes`` and
``inworld_server_events``), ``inworld_router`` (Router chat completions request and SSE
stream), ``signature`` (``X-Twilio-Signature``) and ``twiml`` (TwiML documents). A frame that
cannot be parsed raises ``voiceagent.errors.ProtocolError``; none of these modules imports
asyncio or aiohttp.
"""
