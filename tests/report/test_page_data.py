"""The report page's data and markup, without a browser: sizes that do not grow with the
records, buckets that fit the span, and records' text that cannot break out of the page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np

from voiceagent.report.figures import ECDF_POINTS, bucket_size, ecdf
from voiceagent.report.html import content_security_policy, render_html


def test_ecdf_keeps_small_samples_whole_and_cuts_large_ones_to_quantiles() -> None:
    """Up to ECDF_POINTS values every step is kept; beyond, ECDF_POINTS quantiles; both
    start at (min, 0) and end at (max, 1)."""
    small = ecdf([30.0, 10.0, 20.0])
    assert small == [(10.0, 0.0), (10.0, 0.3333), (20.0, 0.6667), (30.0, 1.0)]
    values = np.random.default_rng(1).gamma(4, 100, 50_000)
    large = ecdf(list(values))
    assert len(large) == ECDF_POINTS + 1
    assert large[0] == (round(values.min(), 1), 0.0) and large[-1] == (round(values.max(), 1), 1.0)
    median = next(x for x, y in large if y >= 0.5)
    assert abs(median - np.median(values)) < 5
    assert ecdf([]) == []


def test_buckets_are_minutes_hours_or_days_by_span() -> None:
    """A rehearsal gets minutes, a few days hours, longer spans days."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    assert bucket_size([start, start + timedelta(minutes=5)]) == (60, "minute")
    assert bucket_size([start, start + timedelta(days=2)]) == (3600, "hour")
    assert bucket_size([start, start + timedelta(days=30)]) == (86400, "day")


def test_records_text_cannot_close_the_data_script() -> None:
    """A transcript holding `</script>` stays inside the JSON data block, and the data
    round-trips; only our two inline scripts are allowed to run (by hash)."""
    hostile = "</script><script>alert(1)</script><!--"
    page = render_html({"numbers": [], "note": hostile, "calls": 0})
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert block is not None and "<" not in block[1]
    assert json.loads(block[1])["note"] == hostile
    assert page.count("<script") == 3
    csp = content_security_policy()
    assert csp.count("'sha256-") == 2 and "unsafe-eval" not in csp and "http" not in csp
