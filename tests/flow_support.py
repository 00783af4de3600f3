"""Helpers for the pure call-flow tests (tests/test_flow_*.py): the default config and menu,
picking commands out of a `handle` result, and helpers that drive a flow to a given state
(`waiting()`, `connected()` ...), so each test is one event and its commands."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from ivr.config import Settings
from ivr.configs import flow_config
from ivr.flow.call import (
    CallerHungUp,
    CallFlow,
    Command,
    Digit,
    FlowConfig,
    Play,
    PlaybackDone,
    QueueStatus,
    StaffAnswered,
    Started,
    State,
)
from ivr.flow.menu import Menu, load_menu
from ivr.paths import PROJECT_ROOT

T = TypeVar("T")

MENU: Menu = load_menu(PROJECT_ROOT / "config" / "menu.toml")


def make_config(**changes: Any) -> FlowConfig:
    """The flow's config from the default settings and MENU, with `changes`."""
    return dataclasses.replace(flow_config(Settings(), MENU), **changes)


CONFIG = make_config()
OPTIONS = (*(o.prompt for o in MENU.options), MENU.repeat_hint)
LEG = "leg-1"


def of(cmds: list[Command], kind: type[T]) -> list[T]:
    """The commands of one type, in order."""
    return [c for c in cmds if isinstance(c, kind)]


def one(cmds: list[Command], kind: type[T]) -> T:
    found = of(cmds, kind)
    assert len(found) == 1, f"expected one {kind.__name__} in {cmds}"
    return found[0]


def last_play(flow: CallFlow, cmds: list[Command]) -> Play:
    play = one(cmds, Play)
    assert flow._playback == play.playback_id
    return play


# --- helpers that drive a flow to a given state ------------------------------------------


def started(now: float = 0.0) -> tuple[CallFlow, list[Command]]:
    flow = CallFlow("c1", CONFIG, now)
    return flow, flow.handle(Started(), now)


def menu_playing() -> tuple[CallFlow, str]:
    flow, cmds = started()
    return flow, one(cmds, Play).playback_id


def menu_waiting() -> CallFlow:
    flow, pb = menu_playing()
    flow.handle(PlaybackDone(pb), 1.0)
    assert flow.state is State.MENU_WAITING
    return flow


def intro() -> tuple[CallFlow, str]:
    """The general line (no consent question): queued, its intro playing."""
    flow = menu_waiting()
    cmds = flow.handle(Digit("1"), 2.0)
    assert flow.state is State.INTRO
    return flow, one(cmds, Play).playback_id


def consent_asked() -> tuple[CallFlow, str]:
    """The loneliness line: queued at once, the intro and the consent question playing."""
    flow = menu_waiting()
    cmds = flow.handle(Digit("5"), 2.0)
    assert flow.state is State.CONSENT
    return flow, one(cmds, Play).playback_id


def waiting(consent: str = "2") -> CallFlow:
    flow, _ = consent_asked()
    flow.handle(Digit(consent), 10.0)  # answered before the question ended
    assert flow.state is State.WAITING
    return flow


def nobody_waiting() -> CallFlow:
    """Waiting (consent answered) while nobody of the line could answer."""
    flow, _ = consent_asked()
    flow.handle(QueueStatus(0, None, reachable=0), 2.5)
    flow.handle(Digit("2"), 10.0)
    assert flow.state is State.WAITING
    return flow


def connecting() -> tuple[CallFlow, str]:
    flow = waiting()
    cmds = flow.handle(StaffAnswered(LEG, "counselor01"), 40.0)
    assert flow.state is State.CONNECTING
    return flow, one(cmds, Play).playback_id


def connected() -> CallFlow:
    flow, whisper = connecting()
    flow.handle(PlaybackDone(whisper), 40.0)
    assert flow.state is State.CONNECTED
    return flow


def goodbye() -> tuple[CallFlow, str]:
    flow = menu_waiting()
    cmds: list[Command] = []
    for _ in range(CONFIG.max_failures):
        cmds = flow.handle(Digit("9"), 3.0)
    assert flow.state is State.GOODBYE
    return flow, one(cmds, Play).playback_id


def ended() -> CallFlow:
    flow = menu_waiting()
    flow.handle(CallerHungUp(), 5.0)
    assert flow.ended
    return flow


def _menu_playing_flow() -> CallFlow:
    return menu_playing()[0]


def _intro_flow() -> CallFlow:
    return intro()[0]


def _goodbye_flow() -> CallFlow:
    return goodbye()[0]


def _consent_flow() -> CallFlow:
    return consent_asked()[0]


LIVE_STATES: dict[State, Callable[[], CallFlow]] = {
    State.MENU_PLAYING: _menu_playing_flow,
    State.MENU_WAITING: menu_waiting,
    State.INTRO: _intro_flow,
    State.CONSENT: _consent_flow,
    State.WAITING: waiting,
    State.CONNECTED: connected,
    State.GOODBYE: _goodbye_flow,
}
