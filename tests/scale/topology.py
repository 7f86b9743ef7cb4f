"""Two `voiceagent serve` processes behind a real HAProxy (deploy/haproxy.cfg), sharing one
Redis database and one PostgreSQL database of their own; the fakes listen on fixed ports so a
test can start them with its own options (see conftest.py).

Which instance served what is read from the instances' JSON log lines (`call_answered`: the
webhook, `stream_started`: the WebSocket, `failover` / `action_apology` / `relay_action`: the
`<Connect action>` callback) and from HAProxy's request log (every request with its server).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.rig import KEY, PUBLIC, TOKEN, rig_config_data

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
SERVERS = ("app1", "app2")
BUDGET = 5  # REALTIME_SESSION_BUDGET across both instances
LEASE_S = 3.0  # REALTIME_SESSION_LEASE_SECONDS: a dead instance's leases go within this
WHERE_EVENTS = {"call_answered": "webhook", "stream_started": "stream", "failover": "action",
                "action_apology": "action", "relay_action": "action",
                "action_transfer": "action"}  # fmt: skip
TRANSFER_REALTIME, TRANSFER_RELAY, FRONT_DESK = "+18005550121", "+18005550122", "+18005550199"
_TRANSFER_TOOLS = [
    {
        "name": "transfer_call",
        "destinations": {
            "front_desk": {"number": FRONT_DESK, "announcement": "Connecting you now."}
        },
    }
]
LEGACY_RELAY = "+18005550123"  # relay-router without applicationReconnect (the action path)
TRANSFER_NUMBERS = {
    TRANSFER_REALTIME: {"mode": "realtime-passthrough",
                        "agent": {"tools": _TRANSFER_TOOLS, "greeting": "Hi."}},
    TRANSFER_RELAY: {"mode": "relay-router", "agent": {"tools": _TRANSFER_TOOLS,
                                                       "greeting": "Hi."}},
    LEGACY_RELAY: {"mode": "relay-router", "relay": {"application_reconnect": False},
                   "agent": {"instructions": "Be brief.", "greeting": "Hello there!"}},
}  # fmt: skip
HOOKS_SECRET = "scale-webhook-secret-0123456789"
HOOKS_LEASE_S = 10.0  # WEBHOOK_LEASE_SECONDS: a killed instance's delivery is retried after it
CTX_REALTIME, CTX_RELAY = "+18005550131", "+18005550132"


def hook_numbers(base_url: str) -> dict[str, Any]:
    """Numbers whose context and events webhooks go to a receiver at `base_url`."""
    hooks = {
        "call_context": {"url": base_url + "/context", "timeout_ms": 1500},
        "call_events": {"url": base_url + "/events"},
    }
    agent = {"greeting": "Hi {{first_name}}.", "instructions": "Help {{first_name}}."}
    return {CTX_REALTIME: {"mode": "realtime-passthrough", "webhooks": hooks, "agent": agent},
            CTX_RELAY: {"mode": "relay-router", "webhooks": hooks, "agent": agent}}  # fmt: skip


OUTBOUND_REALTIME, OUTBOUND_RELAY = "+18005550141", "+18005550142"
_VOICEMAIL = {"action": "leave_message", "message": "Hi {{name}}, please call us back."}
OUTBOUND_NUMBERS = {
    OUTBOUND_REALTIME: {"mode": "realtime-passthrough", "agent": {"greeting": "Hi {{name}}."},
                        "outbound": {"amd": True, "voicemail": _VOICEMAIL}},
    OUTBOUND_RELAY: {"mode": "relay-router", "agent": {"greeting": "Hi {{name}}."},
                     "outbound": {"amd": True, "voicemail": _VOICEMAIL}},
}  # fmt: skip
ACCOUNT_SID = "AC" + "5ca1e" * 6 + "00"  # the fake Twilio REST API's account (both instances)
ADMIN = "scale-admin-token-0123456789abcdef012"
_HTTPLOG = re.compile(r" voiceagent/(\S+) \S+ (-?\d+) .*\"(\S+) (\S+) [^\"]*\"\s*$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def haproxy_binary() -> str | None:
    """HAProxy, installed from Debian's packages if missing (None: it cannot be)."""
    found = _which_haproxy()
    if found is not None or shutil.which("apt-get") is None:
        return found
    for cmd in (["apt-get", "install", "-y", "-qq", "haproxy"], ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "haproxy"]):  # fmt: skip
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(cmd, capture_output=True, timeout=300, check=False)
        if found := _which_haproxy():
            return found
    return None


def _which_haproxy() -> str | None:
    """On PATH or in the sbin directories Debian installs it to (not on a user's PATH)."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str, dict[str, str]]:
    """A blocking GET (fixture set-up): status, body, headers; status 0 if nobody answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)
    except OSError:
        return 0, "", {}


@dataclass
class Instance:
    """One `voiceagent serve` process; restarted (a new generation) after it was stopped."""

    name: str
    port: int
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    generation: int = 0

    def start(self) -> None:
        self.generation += 1
        log = (self.workdir / f"{self.name}-{self.generation}.log").open("wb")
        with log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voiceagent", "serve"], cwd=self.workdir,
                env=self.env | {"PORT": str(self.port)}, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def wait_healthy(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while http_get(f"http://127.0.0.1:{self.port}/healthz")[0] != 200:
            if not self.running:
                raise RuntimeError(f"{self.name} exited: {self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not become healthy")
            time.sleep(0.05)

    def log_text(self) -> str:
        files = sorted(self.workdir.glob(f"{self.name}-*.log"))
        return "".join(f.read_text(errors="replace") for f in files)

    def log_lines(self) -> Iterator[dict[str, Any]]:
        """Every JSON log line this instance wrote, across its generations."""
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    yield json.loads(line)


@dataclass
class Topology:
    """HAProxy round robin over `instances`; the fakes' ports are fixed for the whole run."""

    workdir: Path
    redis_url: str
    database_url: str
    haproxy: str
    realtime_port: int = field(default_factory=free_port)
    router_port: int = field(default_factory=free_port)
    lb_port: int = field(default_factory=free_port)
    stats_port: int = field(default_factory=free_port)
    twilio_port: int = field(default_factory=free_port)  # the fake Twilio REST API
    hooks_port: int = field(default_factory=free_port)  # the business's webhook receiver
    instances: list[Instance] = field(default_factory=list)
    lb: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    def instance(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    def start(self) -> None:
        config = self.workdir / "voiceagent.yaml"
        hooks = hook_numbers(f"http://127.0.0.1:{self.hooks_port}")
        numbers = TRANSFER_NUMBERS | hooks | OUTBOUND_NUMBERS
        config.write_text(yaml.safe_dump(rig_config_data(**numbers)))
        env = dict(
            os.environ, PUBLIC_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN, INWORLD_API_KEY=KEY,
            INWORLD_REALTIME_URL=f"ws://127.0.0.1:{self.realtime_port}/api/v1/realtime/session",
            INWORLD_ROUTER_URL=f"http://127.0.0.1:{self.router_port}/v1/chat/completions",
            REDIS_URL=self.redis_url, DATABASE_URL=self.database_url, HOST="127.0.0.1",
            VOICEAGENT_CONFIG=str(config), LOG_LEVEL="info", LOG_FORMAT="json",
            DRAIN_GRACE_SECONDS="30", UPSTREAM_CONNECT_TIMEOUT="3",
            ROUTER_FIRST_BYTE_TIMEOUT="1", REALTIME_SESSION_BUDGET=str(BUDGET),
            REALTIME_SESSION_LEASE_SECONDS=str(LEASE_S), ADMIN_TOKEN=ADMIN,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID, OUTBOUND_CPS="20",
            TWILIO_API_BASE_URL=f"http://127.0.0.1:{self.twilio_port}",
            WEBHOOK_SIGNING_SECRET=HOOKS_SECRET, WEBHOOK_RETRY_FIRST_SECONDS="0.5",
            WEBHOOK_POLL_SECONDS="0.2", WEBHOOK_TIMEOUT_SECONDS="5",
            WEBHOOK_LEASE_SECONDS=str(HOOKS_LEASE_S),
        )  # fmt: skip
        self.instances = [Instance(n, free_port(), env, self.workdir) for n in SERVERS]
        for inst in self.instances:
            inst.start()
        self._start_lb()
        for inst in self.instances:
            inst.wait_healthy()
        self.wait_in_rotation(SERVERS)

    def _start_lb(self) -> None:
        env = dict(
            os.environ, VOICEAGENT_LB_BIND=f"127.0.0.1:{self.lb_port}",
            VOICEAGENT_LB_STATS=f"127.0.0.1:{self.stats_port}", VOICEAGENT_CHECK_INTER="200ms",
            VOICEAGENT_LB_BALANCE="roundrobin",  # every call's requests on both instances
            **{f"VOICEAGENT_{i.name.upper()}": f"127.0.0.1:{i.port}" for i in self.instances},
        )  # fmt: skip
        env.pop("VOICEAGENT_TLS_CERT", None)
        log = (self.workdir / "haproxy.log").open("wb")
        with log:
            self.lb = subprocess.Popen(
                [self.haproxy, "-db", "-f", str(HAPROXY_CFG)], env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def server_states(self) -> dict[str, str]:
        """HAProxy's view of each instance: UP, DOWN, NOLB, ... (its stats CSV)."""
        status, body, _ = http_get(f"http://127.0.0.1:{self.stats_port}/stats;csv")
        if status != 200:
            return {}
        rows = [line.split(",") for line in body.splitlines() if line]
        col = [rows[0][0].lstrip("# "), *rows[0][1:]].index("status")
        return {r[1]: r[col] for r in rows[1:] if r[0] == "voiceagent" and r[1] in SERVERS}

    def wait_in_rotation(self, names: tuple[str, ...], within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while any(self.server_states().get(n) != "UP" for n in names):
            if self.lb is not None and self.lb.poll() is not None:
                raise RuntimeError((self.workdir / "haproxy.log").read_text())
            if time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy never saw {names} up: {self.server_states()}")
            time.sleep(0.05)

    def ensure_up(self) -> None:
        """Restart any instance an earlier test stopped; wait until HAProxy routes to both."""
        for inst in self.instances:
            if not inst.running:
                inst.start()
                inst.wait_healthy()
        self.wait_in_rotation(SERVERS)

    def stop(self) -> None:
        for inst in self.instances:
            inst.stop()
        if self.lb is not None and self.lb.poll() is None:
            self.lb.terminate()
            self.lb.wait(10)

    # -- who served what ---------------------------------------------------------------------
    def where(self, call_sid: str) -> dict[str, set[str]]:
        """For one call: which instances served its webhook, stream(s) and action callbacks."""
        found: dict[str, set[str]] = {"webhook": set(), "stream": set(), "action": set()}
        for inst in self.instances:
            for line in inst.log_lines():
                what = WHERE_EVENTS.get(line.get("event", ""))
                if what is not None and line.get("call_sid") == call_sid:
                    found[what].add(inst.name)
        return found

    def requests(self) -> list[tuple[str, int, str, str]]:
        """HAProxy's request log: (server, status, method, path) per request."""
        rows = []
        for line in (self.workdir / "haproxy.log").read_text(errors="replace").splitlines():
            if (m := _HTTPLOG.search(line)) is not None:
                rows.append((m[1], int(m[2]), m[3], m[4]))
        return rows
