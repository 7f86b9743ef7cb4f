"""`voiceagent reload`: apply an edited per-number YAML to a running server, for new calls.

Either asks the server (`POST /admin/reload` with the ADMIN_TOKEN bearer) and prints the new
config version or the config error, or sends SIGHUP to a server process (`--pid`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from typing import Any


def admin_endpoint(args: argparse.Namespace, or_else: str = "") -> tuple[str, str] | None:
    """The running server's base URL and ADMIN_TOKEN, from `--url` / `--token` or the settings;
    None (said on stderr, with `or_else` as another way) when there is no token."""
    from voiceagent.settings import load_settings

    settings = load_settings()
    token = args.token or settings.admin_token
    if not token:
        print(f"ADMIN_TOKEN is empty: set it (server and here){or_else}", file=sys.stderr)
        return None
    return args.url or f"http://127.0.0.1:{settings.port}", token


def request_reload(base_url: str, token: str, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """POST `{base_url}/admin/reload`; the HTTP status and the JSON (or text) answer."""
    request = urllib.request.Request(
        base_url.rstrip("/") + "/admin/reload",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, {"error": body.strip() or exc.reason}


def cmd_reload(args: argparse.Namespace) -> int:
    if args.pid is not None:
        try:
            os.kill(args.pid, signal.SIGHUP)
        except OSError as exc:
            print(f"cannot signal process {args.pid}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"sent SIGHUP to {args.pid}; the server logs config_reloaded or the error")
        return 0
    endpoint = admin_endpoint(args, ", or use --pid")
    if endpoint is None:
        return 2
    url, token = endpoint
    try:
        status, body = request_reload(url, token)
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach {url}: {exc}", file=sys.stderr)
        return 2
    if status == 200:
        print(f"config reloaded: version {body.get('config_version')}")
        return 0
    print(f"reload refused ({status}): {body.get('error', body)}", file=sys.stderr)
    return 1


def add_parser(sub: Any) -> None:
    """Register `voiceagent reload` on the CLI's subparsers."""
    p = sub.add_parser("reload", help="re-read the per-number YAML in a running server")
    p.add_argument("--url", help="server base URL (default: http://127.0.0.1:$PORT)")
    p.add_argument("--pid", type=int, help="send SIGHUP to this server process instead")
    p.add_argument("--token", help=argparse.SUPPRESS)  # tests; normally ADMIN_TOKEN
    p.set_defaults(func=cmd_reload)
