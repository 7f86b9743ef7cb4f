"""The deployment files agree with each other and with the code: compose.yaml with
deploy/haproxy.cfg, the image's commands with the README and the Makefile, and every stop
timeout with the drain."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from voiceagent.server import ENDED_CALLS_WAIT_SECONDS
from voiceagent.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())  # type: ignore[no-any-return]


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _instruction(name: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in _dockerfile() if line.startswith(name + " ")]


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m)?", value)
    assert match, value
    return float(match[1]) * (60 if match[2] == "m" else 1)


def test_compose_services_are_the_haproxy_backends() -> None:
    """Every `server` of deploy/haproxy.cfg is a compose app service on its PORT, and back."""
    cfg = (ROOT / "deploy/haproxy.cfg").read_text()
    servers = re.findall(r"^\s*server (\w+) \"\$\{(VOICEAGENT_APP\d+)-[^}]*\}\"", cfg, re.M)
    assert len(servers) == 2
    services = _compose()["services"]
    lb = services["haproxy"]
    assert "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    assert lb["command"][-1] == "/usr/local/etc/haproxy/haproxy.cfg"
    apps = {name for name, s in services.items() if s.get("build") == "."}
    targets = set()
    for _, env in servers:
        host, port = lb["environment"][env].split(":")
        assert host in apps and services[host]["environment"]["PORT"] == port
        assert host in lb["depends_on"]
        targets.add(host)
    assert targets == apps
    for name in apps:
        env = services[name]["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:") and "redis" in services
        assert "@postgres:5432/" in env["DATABASE_URL"] and "postgres" in services
        Settings(**{k.lower(): v for k, v in env.items()})  # valid settings


def test_image_runs_the_readme_command_as_pid_1_from_the_lock() -> None:
    """ENTRYPOINT+CMD is `voiceagent serve` in exec form, installed from the hashed lock as
    `make install` does, by a non-root user, on a slim base."""
    command = json.loads(_instruction("ENTRYPOINT")[0]) + json.loads(_instruction("CMD")[0])
    assert command == ["voiceagent", "serve"]
    assert "`voiceagent serve`" in (ROOT / "README.md").read_text()
    runs = " ".join(_instruction("RUN"))
    assert "pip install --require-hashes -r requirements/runtime.txt" in runs
    assert "pip install --no-deps --no-build-isolation ." in runs
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes -r $(LOCK)" in makefile
    assert "pip install -q --no-deps --no-build-isolation -e ." in makefile
    assert all("slim" in base for base in _instruction("FROM"))
    assert _instruction("USER") == ["voiceagent"] and _instruction("STOPSIGNAL") == ["SIGTERM"]


def test_runtime_lock_pins_what_the_dev_lock_pins() -> None:
    """The image's lock is the dev lock without the dev tools: same versions, hashes on all."""

    def pins(name: str) -> dict[str, str]:
        text = (ROOT / "requirements" / name).read_text()
        hashed = re.findall(r"^([a-z0-9_.-]+)==(\S+) \\\n\s+--hash=sha256:", text, re.M)
        assert len(hashed) == len(re.findall(r"^\S+==", text, re.M))  # every pin has hashes
        return dict(hashed)

    runtime, dev = pins("runtime.txt"), pins("lock.txt")
    assert runtime and all(dev[name] == version for name, version in runtime.items())
    assert {"pytest", "mypy", "ruff"} <= set(dev) - set(runtime)


def test_stop_timeouts_exceed_the_drain() -> None:
    """compose's stop_grace_period and the systemd unit's TimeoutStopSec exceed the drain they
    configure (and the default): DRAIN_GRACE_SECONDS plus the wait for the calls it ended."""
    default = Settings().drain_grace_seconds + ENDED_CALLS_WAIT_SECONDS
    for name, service in _compose()["services"].items():
        if service.get("build") == ".":
            drain = float(service["environment"]["DRAIN_GRACE_SECONDS"])
            grace = _seconds(service["stop_grace_period"])
            assert grace > max(default, drain + ENDED_CALLS_WAIT_SECONDS), name
            assert service["stop_signal"] == "SIGTERM"
    unit = (ROOT / "deploy/voiceagent.service").read_text()
    stop = float(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)[1])  # type: ignore[index]
    drain = float(re.search(r"^Environment=DRAIN_GRACE_SECONDS=(\d+)$", unit, re.M)[1])  # type: ignore[index]
    assert stop > max(default, drain + ENDED_CALLS_WAIT_SECONDS)
    assert re.search(r"^ExecStart=\S+/voiceagent serve$", unit, re.M)
    assert "KillSignal=SIGTERM" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
