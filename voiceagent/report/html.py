"""The report as one self-contained HTML page: the data as JSON, drawn by Chart.js.

Everything the page needs is inlined (the vendored Chart.js, `assets/report.js` and
`report.css`), so it opens offline from a file and fetches nothing from another host; its
Content-Security-Policy allows only those inline scripts (by hash) and, for the live
dashboard, requests to the same origin.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).with_name("assets")
CHART_JS_VERSION = "4.6.1"  # see assets/VENDORED.md

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><h1>{title}</h1><p id="banner" hidden></p><p id="summary"></p><p id="status"></p>
</header>
<section id="live" hidden></section>
<section id="experiments" hidden></section>
<main id="numbers"></main>
<footer>Charts drawn with Chart.js {version} (MIT licence, inlined). Latency definitions: see
the voiceagent README.</footer>
<script type="application/json" id="report-data">{data}</script>
<script>{chart_js}</script>
<script>{report_js}</script>
</body>
</html>
"""


@functools.cache
def _asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    if name.endswith(".min.js"):  # drop `//# sourceMappingURL=…`: the map is not shipped
        text = "\n".join(line for line in text.splitlines() if not line.startswith("//# "))
    return text


def _sha256(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy() -> str:
    """Only our two inline scripts run; requests only to the page's own origin."""
    hashes = " ".join(_sha256(_asset(n)) for n in ("chart.umd.min.js", "report.js"))
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'"
    )


def data_json(data: dict[str, Any]) -> str:
    """`data` as JSON that is safe inside a <script> element (no `<` at all)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(data: dict[str, Any], title: str = "voiceagent report") -> str:
    """The page for `figures.page_data(...)` (plus `live` and `refresh` on the dashboard)."""
    return _PAGE.format(
        csp=content_security_policy(),
        title=html.escape(title),
        css=_asset("report.css"),
        version=CHART_JS_VERSION,
        data=data_json(data),
        chart_js=_asset("chart.umd.min.js"),
        report_js=_asset("report.js"),
    )
