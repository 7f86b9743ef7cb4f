"""Prometheus metrics: one registry per app, fed by a CallSink; `GET /metrics` exposes them.

Latencies are histograms in seconds (Prometheus base unit) labelled by number, arm and mode,
with the definitions of `session/latency.py`. Calls are counted when they end (by outcome),
turns and their latencies when each turn finishes, barge-ins from the call's counters at its
end. Upstream failures are counted by kind: each failed turn's kind, plus the call's fatal
`upstream_failure` unless a failed turn of that call already counted it.

Label values are bounded: a number is a label only if the current config names it, an arm
only if that number's experiment has it, anything else is ``other``, so callers and peers
cannot grow the exposition. Calls `/voice` refused are counted by reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from voiceagent.config import Config, ModeName, NumberConfig
from voiceagent.errors import UpstreamFailure
from voiceagent.logging import get_logger
from voiceagent.session.call import CallSession, CallSink
from voiceagent.session.latency import TurnTiming
from voiceagent.store.live.factory import SharedStores
from voiceagent.store.records.sink import RecordingSink
from voiceagent.tools.calls import ToolResult
from voiceagent.tools.telemetry import metric_labels
from voiceagent.webhooks.telemetry import WebhookMetrics

log = get_logger("voiceagent.metrics")

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8,
    1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
LABELS = ("number", "arm", "mode")
# Histogram name → the TurnTiming figure it observes (greeting: response_ms of greeting turns).
LATENCIES = {
    "response": "response_ms",
    "upstream_ttfb": "upstream_ttfb_ms",
    "overhead": "overhead_ms",
    "fetch": "fetch_ms",
    "heard": "heard_ms",
    "barge_in": "barge_in_ms",
}
UPSTREAM_KINDS = frozenset(kind.value for kind in UpstreamFailure)
MODES = frozenset(ModeName)
OTHER = "other"
RefusalReason = Literal["overload", "draining", "unknown_number"]


def _count_of(active_calls: Callable[[str], int], mode: str) -> Callable[[], float]:
    return lambda: float(active_calls(mode))


class LabelGuard:
    """Label values for a call: configured numbers and arms as they are, anything else
    ``other`` (the config is read at observation time, so a reload applies at once)."""

    def __init__(self, config: Callable[[], Config] | None) -> None:
        self._config = config

    def _numbers(self) -> dict[str, NumberConfig]:
        return self._config().numbers if self._config is not None else {}

    def number(self, number: str) -> str:
        return number if number in self._numbers() else OTHER

    def arm(self, number: str, arm: str | None) -> str:
        if arm is None:
            return ""
        entry = self._numbers().get(number)
        experiment = entry.experiment if entry is not None else None
        known = experiment is not None and any(a.name == arm for a in experiment.arms)
        return arm if known else OTHER

    def mode(self, mode: str | None) -> str:
        return mode if mode is not None and mode in MODES else OTHER

    def call(self, call: CallSession) -> tuple[str, str, str]:
        return self.number(call.number), self.arm(call.number, call.arm), self.mode(call.mode)


class Metrics:
    """The app's Prometheus collectors, in their own registry (never the global one).

    ``config`` gives the current per-number config (labels only take its numbers and arms);
    without it every number is ``other``.
    """

    def __init__(
        self,
        active_calls: Callable[[str], int] | None = None,
        config: Callable[[], Config] | None = None,
    ) -> None:
        self.labels = LabelGuard(config)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = {
            name: Histogram(
                f"voiceagent_{name}_latency_seconds",
                f"Per-turn {name.replace('_', ' ')} latency (see README, Latency definitions).",
                LABELS, buckets=LATENCY_BUCKETS, registry=r,
            )
            for name in (*LATENCIES, "greeting")
        }  # fmt: skip
        self.calls = Counter(
            "voiceagent_calls", "Calls ended, by outcome (end reason).",
            (*LABELS, "outcome"), registry=r,
        )  # fmt: skip
        self.turns = Counter(
            "voiceagent_turns", "Agent turns finished (kind greeting or turn).",
            (*LABELS, "kind"), registry=r,
        )  # fmt: skip
        self.barge_ins = Counter(
            "voiceagent_barge_ins", "Caller barge-ins that interrupted the agent.", LABELS,
            registry=r,
        )  # fmt: skip
        self.upstream_errors = Counter(
            "voiceagent_upstream_errors", "Inworld failures by kind.", ("mode", "kind"), registry=r
        )
        self.failovers = Counter(
            "voiceagent_failovers", "Calls handed to a fallback mode.",
            ("number", "from_mode", "to_mode"), registry=r,
        )  # fmt: skip
        self.refused = Counter(
            "voiceagent_calls_refused", "Calls /voice refused, by reason.", ("reason",), registry=r
        )
        for reason in get_args(RefusalReason):
            self.refused.labels(reason)  # every reason is exposed, from 0
        self.tool_calls = Counter(
            "voiceagent_tool_calls", "Tool calls by tool and outcome (undeclared names: other).",
            ("tool", "outcome"), registry=r,
        )  # fmt: skip
        self.tool_duration = Histogram(
            "voiceagent_tool_duration_seconds", "Time a tool call took, arguments to result.",
            ("tool",), buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.overflows = Counter(
            "voiceagent_realtime_overflows",
            "Realtime calls over the shared Inworld session budget, by what /voice did.",
            ("number", "action"), registry=r,
        )  # fmt: skip
        self.webhooks = WebhookMetrics(r)
        self.active_calls = Gauge(
            "voiceagent_active_calls", "Calls in flight, per mode.", ("mode",), registry=r
        )
        if active_calls is not None:
            for mode in ModeName:
                self.active_calls.labels(mode=mode).set_function(_count_of(active_calls, mode))

    def watch_backends(self, stores: SharedStores, records: RecordingSink | None) -> None:
        """Gauges read at scrape time: Realtime sessions in use (the shared budget), the shared
        Redis (up, outages, operations served locally) and the records writer (buffered,
        written, dropped, rejected, lost; database up)."""
        r, gauges = self.registry, {}
        budget = stores.budget
        gauges["realtime_sessions_in_use"] = (
            "Inworld Realtime sessions in use across instances (last read).",
            lambda: float(budget.last_in_use),
        )
        health = stores.health
        if health is not None:
            gauges["shared_store_up"] = ("1 while Redis answers.", lambda: float(health.up))
            gauges["shared_store_outages"] = ("Redis outages seen.", lambda: health.outages)
            gauges["shared_store_fallbacks"] = (
                "Operations served from local memory while Redis was down.",
                lambda: health.fallbacks,
            )
        if records is not None:
            stats = records.stats
            gauges["records_pending"] = ("Records buffered.", lambda: float(records.pending))
            gauges["records_database_up"] = ("1 while the database answers.",
                                             lambda: float(stats.database_up))  # fmt: skip
            for field in ("written", "dropped", "rejected", "lost"):
                gauges[f"records_{field}"] = (
                    f"Call/turn records {field} so far.",
                    lambda field=field: float(getattr(stats, field)),  # type: ignore[misc]
                )
        for name, (doc, read) in gauges.items():
            Gauge(f"voiceagent_{name}", doc, registry=r).set_function(read)

    def overflow(self, number: str, action: str) -> None:
        """A realtime call over the shared session budget, and what `/voice` did with it."""
        self.overflows.labels(self.labels.number(number), action).inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def observe_turn(self, call: CallSession, turn: TurnTiming) -> None:
        labels = self.labels.call(call)
        self.turns.labels(*labels, turn.kind).inc()
        figures = turn.figures()
        for name, figure in LATENCIES.items():
            key = "greeting" if name == "response" and turn.kind == "greeting" else name
            value = figures[figure]
            if value is not None:
                self.latency[key].labels(*labels).observe(value / 1000.0)
        if turn.failed is not None:
            self.upstream_error(call.mode, turn.failed)

    def observe_call_end(self, call: CallSession) -> None:
        labels = self.labels.call(call)
        outcome = call.end_reason.value if call.end_reason else "internal_error"
        self.calls.labels(*labels, outcome).inc()
        if call.counters.barge_ins:
            self.barge_ins.labels(*labels).inc(call.counters.barge_ins)
        failure = call.upstream_failure
        if failure is not None and all(t.failed != failure for t in call.latency.turns):
            self.upstream_error(call.mode, failure)

    def upstream_error(self, mode: str, kind: str) -> None:
        """Count one upstream failure; kinds outside UpstreamFailure are not upstream errors."""
        if kind in UPSTREAM_KINDS:
            self.upstream_errors.labels(self.labels.mode(mode), kind).inc()

    def failover(self, number: str, from_mode: str, to_mode: str) -> None:
        guard = self.labels
        self.failovers.labels(
            guard.number(number), guard.mode(from_mode), guard.mode(to_mode)
        ).inc()

    def refuse(self, reason: RefusalReason) -> None:
        """Count one call `/voice` refused (overload, draining, unknown number)."""
        self.refused.labels(reason).inc()

    def tool_call(self, result: ToolResult) -> None:
        """Count one tool call and observe its duration (labels bounded by `metric_labels`)."""
        tool, outcome = metric_labels(result)
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_duration.labels(tool).observe(result.duration_ms / 1000.0)


class MetricsSink:
    """A CallSink updating `Metrics`; a failover leg (call.failover_from) counts a failover."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def call_started(self, call: CallSession) -> None:
        if call.failover_from is not None:
            self.metrics.failover(call.number, call.failover_from, call.mode)

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self.metrics.observe_turn(call, turn)

    def call_ended(self, call: CallSession) -> None:
        self.metrics.observe_call_end(call)


class FanOutSink:
    """A CallSink handing every milestone to several sinks, in order.

    Telemetry must never end a call: a sink that raises is logged and the others still run.
    """

    def __init__(self, sinks: Iterable[CallSink]) -> None:
        self.sinks = tuple(sinks)

    def call_started(self, call: CallSession) -> None:
        self._each("call_started", lambda sink: sink.call_started(call))

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self._each("turn_finished", lambda sink: sink.turn_finished(call, turn))

    def call_ended(self, call: CallSession) -> None:
        self._each("call_ended", lambda sink: sink.call_ended(call))

    def _each(self, milestone: str, deliver: Callable[[CallSink], None]) -> None:
        for sink in self.sinks:
            try:
                deliver(sink)
            except Exception:
                log.error(
                    "sink_failed", sink=type(sink).__name__, milestone=milestone, exc_info=True
                )
