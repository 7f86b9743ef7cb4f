"""The production log renderer: no value a peer can make us log can raise from a log call."""

from __future__ import annotations

import io

import orjson
import structlog

from voiceagent.logging import log_processors


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_json_renderer_writes_values_orjson_refuses_as_text() -> None:
    """An integer past 64 bits, a lone surrogate, a non-string key and an object whose `str`
    fails are written as text; the line is valid JSON and the log call does not raise."""
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out), processors=log_processors("json"), context_class=dict
    )
    logger.info("odd_values", big=int(1e308), text="\udcff", mapping={1: 2}, thing=_Unprintable())
    line = orjson.loads(out.getvalue())
    assert line["event"] == "odd_values"
    assert line["big"] == str(int(1e308))
    assert line["mapping"] == {"1": 2}
    assert line["thing"] == "<_Unprintable>"
    assert line["text"] == "?"
