"""What each experiment arm changes, from the per-number config: the report's "settings" line.

Computed from the config as it is when the report is made (the records keep the arm's name, not
its settings), through the same resolution a call uses (`Config.plan_for`), so what is shown is
what a call of that arm gets, compared with what the number's own settings give.
"""

from __future__ import annotations

from typing import Any

from voiceagent.config import Arm, CallPlan, Config

_LONG = 60


def arm_settings(config: Config, number: str) -> dict[str, list[str]]:
    """Per arm of `number`'s experiment: `mode: …` and each setting that differs from the
    number's, as `agent.voice: Dennis (number: Clive)`. Empty without an experiment."""
    entry = config.numbers.get(number)
    if entry is None or entry.experiment is None:
        return {}
    out = {}
    for arm in entry.experiment.arms:
        base, mine = _plan(config, number, arm, alone=False), _plan(config, number, arm, True)
        lines = [f"mode: {arm.mode}"]
        for section in ("agent", arm.mode.knob_section):
            before = _flat(getattr(base, section).model_dump(mode="json"), section)
            after = _flat(getattr(mine, section).model_dump(mode="json"), section)
            lines += [
                f"{key}: {_short(value)} (number: {_short(before.get(key))})"
                for key, value in after.items()
                if before.get(key) != value
            ]
        out[arm.name] = lines
    return out


def experiment_weights(config: Config) -> dict[str, dict[str, float]]:
    """Per number with an experiment: each arm's configured weight (for the sample ratio
    check)."""
    return {
        number: {arm.name: arm.weight for arm in entry.experiment.arms}
        for number, entry in config.numbers.items()
        if entry.experiment is not None
    }


def _plan(config: Config, number: str, arm: Arm, alone: bool) -> CallPlan:
    """The plan of a call to `number` in `arm` (`alone`), or with the number's own settings
    and the arm's mode; model copies skip validation, which `config` already passed."""
    entry = config.numbers[number]
    assert entry.experiment is not None
    if alone:
        only = entry.experiment.model_copy(update={"arms": (arm,)})
        entry = entry.model_copy(update={"experiment": only})
    else:
        entry = entry.model_copy(update={"experiment": None, "mode": arm.mode})
    plan = config.model_copy(update={"numbers": {number: entry}}).plan_for(number, "CA")
    assert plan is not None
    return plan


def _flat(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}.{key}"))
        else:
            out[f"{prefix}.{key}"] = value
    return out


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _LONG else text[: _LONG - 1] + "…"
