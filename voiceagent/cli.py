"""Command line: `voiceagent serve | check-config | simulate | report | experiments | reload |
twilio | webhooks | calls | sign | call`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from voiceagent import __version__
from voiceagent.config import Config, load_config
from voiceagent.config_errors import ConfigFileError, ConfigProblem
from voiceagent.errors import ConfigError
from voiceagent.logging import configure_logging
from voiceagent.outbound.command import add_parser as add_call
from voiceagent.reload import add_parser as add_reload
from voiceagent.report import add_parser as add_report
from voiceagent.report.calls_command import add_parser as add_calls
from voiceagent.report.experiments import add_parser as add_experiments
from voiceagent.settings import load_settings
from voiceagent.sign import add_parser as add_sign
from voiceagent.sim.rehearsal import add_parser as add_simulate
from voiceagent.twilio_numbers import add_parser as add_twilio
from voiceagent.webhooks.admin import add_parser as add_webhooks
from voiceagent.webhooks.checks import (
    placeholder_warnings,
    recording_warnings,
    webhook_settings_error,
)


def _config_table(config: Config) -> list[dict[str, str]]:
    rows = []
    for number, entry in sorted(config.numbers.items()):
        plan = config.plan_for(number, "CA" + "0" * 32)
        assert plan is not None
        mode = entry.mode or "experiment:" + ",".join(
            f"{a.name}={a.mode}@{a.weight:g}"
            for a in entry.experiment.arms  # type: ignore[union-attr]
        )
        rows.append(
            {
                "number": number,
                "mode": mode,
                "agent": (
                    f"{plan.agent.llm_model} / voice {plan.agent.voice} / {plan.agent.tts_model}"
                ),
                "fallback_mode": entry.fallback_mode or "",
            }
        )
    return rows


def cmd_check_config(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else load_settings().config_path
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _config_errors(exc, path, as_json=args.json)
    rows = _config_table(config)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 1
    problem = webhook_settings_error(settings, config)
    if problem is not None:
        print(f"invalid config: webhooks cannot start: {problem}", file=sys.stderr)
        return 1
    for warning in placeholder_warnings(config) + recording_warnings(settings, config):
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(path),
                    "unknown_numbers": config.unknown_numbers.policy,
                    "numbers": rows,
                },
                indent=2,
            )
        )
        return 0
    print(f"{path}: OK ({len(rows)} numbers; unknown numbers: {config.unknown_numbers.policy})")
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in rows[0]} if rows else {}
    if rows:
        print("  ".join(k.ljust(w) for k, w in widths.items()))
        for r in rows:
            print("  ".join(r[k].ljust(w) for k, w in widths.items()))
    return 0


def _config_errors(exc: ConfigError, path: Path, *, as_json: bool) -> int:
    """Every problem of the file: JSON on stdout with --json, else `file:line: ...` on stderr."""
    problems = (
        exc.problems
        if isinstance(exc, ConfigFileError)
        else [ConfigProblem(exc.path, str(exc).removeprefix(f"{exc.path}: "))]
    )
    if as_json:
        errors = [p.as_dict() for p in problems]
        print(json.dumps({"path": str(path), "ok": False, "errors": errors}, indent=2))
        return 1
    lines = exc.lines() if isinstance(exc, ConfigFileError) else [str(exc)]
    count = f"{len(lines)} problem{'s' * (len(lines) > 1)}"
    print(f"invalid config: {path}: {count}", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    return 1


def cmd_serve(args: argparse.Namespace) -> int:
    from voiceagent.server import run

    try:
        settings = load_settings()
        overrides = {"port": args.port, "host": args.host}
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        configure_logging(settings.log_level, settings.log_format)
        config = load_config(settings.config_path)  # fail fast, before listening
        problem = webhook_settings_error(settings, config)
        if problem is not None:
            raise ConfigError(problem)
    except ConfigFileError as exc:
        return _config_errors(exc, settings.config_path, as_json=False)
    except ConfigError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 1
    run(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voiceagent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"voiceagent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="serve Twilio calls (settings from env / .env)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="listen on this port instead of PORT (default 8080; 0: any free port)",
    )
    p.add_argument("--host", default=None,
                   help="listen on this address instead of HOST (default 0.0.0.0)")  # fmt: skip
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("check-config", help="validate a per-number YAML file")
    p.add_argument("path", nargs="?", help="YAML file (default: VOICEAGENT_CONFIG)")
    p.add_argument("--json", action="store_true",
                   help="print the table, or every error, as JSON on stdout")  # fmt: skip
    p.set_defaults(func=cmd_check_config)
    add_simulate(sub)
    add_report(sub)
    add_experiments(sub)
    add_reload(sub)
    add_twilio(sub)
    add_webhooks(sub)
    add_calls(sub)
    add_sign(sub)
    add_call(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:  # bad settings in any command: one line, no traceback
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
