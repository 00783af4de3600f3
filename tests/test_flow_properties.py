"""Properties of the whole journey machine (CallFlow with its Conversation), for any sequence
of events: exactly one `Finish`; every answered staff leg bridged or hung up; nothing after the
end but hanging up a leg that answered too late.

The events are drawn from every event type with plausible ids: the playback ids and timer
names the machine issued as well as made-up ones, a few leg ids (staff and crisis) and a
made-up one, keys for the caller and the counselor, silences, speech, queue statuses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.config import Settings
from ivr.configs import flow_config
from ivr.flow.call import (
    CONSENT_TIMER,
    INPUT_TIMER,
    MAX_WAIT_TIMER,
    NO_WORDS,
    REASSURE_TIMER,
    YES_WORDS,
    CallerHungUp,
    CallFlow,
    Command,
    Connect,
    CrisisAnswered,
    CrisisEnded,
    Digit,
    Failed,
    Finish,
    FlowEvent,
    HangupLeg,
    Heard,
    JoinTalk,
    NotifyStaff,
    Party,
    Play,
    PlaybackDone,
    QueueStatus,
    Silence,
    SpeechHeard,
    StaffAnswered,
    StaffDigit,
    StaffHungUp,
    Started,
    StartListening,
    State,
    TimerFired,
)
from ivr.flow.menu import Menu, load_menu
from ivr.paths import PROJECT_ROOT

MENU: Menu = load_menu(PROJECT_ROOT / "config" / "menu.toml")
#: Short thresholds so that drawn silences and waits reach them.
CONFIG = dataclasses.replace(
    flow_config(Settings(), MENU),
    callback_offer_after=60.0,
    both_silence_notify=10.0,
    caller_silence_notify=20.0,
    max_wait=200.0,
)
STAFF_LEGS = ("leg-1", "leg-2", "leg-3")
CRISIS_LEGS = ("crisis-1", "crisis-2")
MEMBERS = ("counselor01", "counselor02")
KEYS = tuple("0123456789*#")
#: `*` and the feature keys, more often than the rest, so that feature codes happen.
STAFF_KEYS = ("*", "*", "9", "7", "8", "6", *KEYS)
PHRASES = (*YES_WORDS, *NO_WORDS, *MENU.voice_phrases, "모르겠어요")
TIMERS = (INPUT_TIMER, REASSURE_TIMER, CONSENT_TIMER, MAX_WAIT_TIMER, "no-such-timer")
STATES_WITH_STAFF_LEG = frozenset({State.CONNECTING, State.CONNECTED})


@dataclass
class Run:
    """One journey driven by drawn events, and what the machine said along the way."""

    flow: CallFlow = field(default_factory=lambda: CallFlow("c1", CONFIG, 0.0))
    now: float = 0.0
    commands: list[Command] = field(default_factory=list)
    playbacks: list[str] = field(default_factory=list)
    #: Staff and crisis legs that answered and were taken (not hung up at once).
    answered: set[str] = field(default_factory=set)
    #: Legs the machine bridged (Connect/JoinTalk) or hung up (HangupLeg).
    bridged: set[str] = field(default_factory=set)
    hung_up: set[str] = field(default_factory=set)
    #: Legs that went away by themselves (StaffHungUp/CrisisEnded while with the call).
    gone: set[str] = field(default_factory=set)
    staff_leg: str | None = None  # the leg StaffHungUp is about
    crisis_leg: str | None = None  # the leg CrisisEnded is about
    after_end: list[tuple[FlowEvent, list[Command]]] = field(default_factory=list)

    def feed(self, event: FlowEvent) -> list[Command]:
        was_ended, state = self.flow.ended, self.flow.state
        if isinstance(event, StaffHungUp) and state in STATES_WITH_STAFF_LEG and self.staff_leg:
            self.gone.add(self.staff_leg)  # the adapter feeds it for the call's answered leg
            self.staff_leg = None
        if isinstance(event, CrisisEnded) and self.crisis_leg:
            self.gone.add(self.crisis_leg)
            self.crisis_leg = None
        cmds = self.flow.handle(event, self.now)
        if was_ended:
            self.after_end.append((event, cmds))
        self.commands += cmds
        for cmd in cmds:
            if isinstance(cmd, Play):
                self.playbacks.append(cmd.playback_id)
            elif isinstance(cmd, Connect):
                self.bridged.add(cmd.leg_id)
            elif isinstance(cmd, JoinTalk):
                self.bridged.add(cmd.leg_id)
                self.crisis_leg = cmd.leg_id
            elif isinstance(cmd, HangupLeg):
                self.hung_up.add(cmd.leg_id)
        if isinstance(event, StaffAnswered) and HangupLeg(event.leg_id) not in cmds:
            self.answered.add(event.leg_id)
            self.staff_leg = event.leg_id
        if isinstance(event, CrisisAnswered) and JoinTalk(event.leg_id) in cmds:
            self.answered.add(event.leg_id)
        return cmds


@dataclass(frozen=True)
class FeatureCode:
    """Stands for the counselor's `*` followed by `key`."""

    key: str


@dataclass(frozen=True)
class Issued:
    """Stands for `PlaybackDone` of the `back`-th most recent playback the machine issued."""

    back: int


_made_up = st.text("abc123", min_size=1, max_size=3)
_seconds = st.floats(0.0, 90.0)
_party = st.sampled_from(tuple(Party))
_staff_answer = st.builds(StaffAnswered, st.sampled_from(STAFF_LEGS), st.sampled_from(MEMBERS))
_crisis_answer = st.builds(CrisisAnswered, st.sampled_from(CRISIS_LEGS))
#: Built once (building strategies per draw is what makes a property test slow). Repeated
#: entries are drawn more often; the events that end a call are among the rare ones, so that
#: journeys get far.
_WEIGHTED: list[st.SearchStrategy[FlowEvent | Issued | FeatureCode]] = [
    *[st.builds(Issued, st.integers(1, 3))] * 4,
    *[st.builds(StaffDigit, st.sampled_from(STAFF_KEYS))] * 2,
    *[st.builds(FeatureCode, st.sampled_from(("9", "7", "7", "8", "6")))] * 2,
    *[st.builds(Digit, st.sampled_from(KEYS))] * 2,
    *[st.builds(Silence, _party, _seconds)] * 2,
    *[st.builds(SpeechHeard, _party, _seconds)] * 2,
    *[_staff_answer] * 2,
    st.builds(PlaybackDone, _made_up.map(lambda t: f"c1-pb{t}")),
    st.builds(TimerFired, st.sampled_from(TIMERS)),
    st.builds(StaffAnswered, _made_up.map(lambda t: f"leg-{t}"), st.sampled_from(MEMBERS)),
    st.builds(Heard, st.sampled_from(PHRASES)),
    st.builds(
        QueueStatus,
        st.integers(0, 4),
        st.none() | st.floats(0.0, 900.0),
        st.none() | st.integers(0, 3),
    ),
    _crisis_answer,
    st.builds(CrisisAnswered, _made_up.map(lambda t: f"x-{t}")),
    *[st.just(CrisisEnded())] * 2,
    *[st.just(StaffHungUp())] * 2,
    st.just(CallerHungUp()),
    st.builds(Failed, st.just("drawn failure")),
    st.builds(Started, st.booleans()),
]
EVENTS = st.sampled_from(_WEIGHTED).flatmap(lambda strategy: strategy)
#: Plausible openings, so that the random part often starts deep in the journey: nowhere,
#: waiting on the loneliness line, connected (with consent, or on the general line without
#: the question), in a warm transfer.
_TO_CONNECTED = [
    Issued(1),
    Digit("5"),
    Digit("1"),
    StaffAnswered("leg-1", "counselor01"),
    Issued(1),
]
OPENINGS: list[list[FlowEvent | Issued | FeatureCode]] = [
    [],
    [Issued(1), Digit("5"), Digit("2")],
    _TO_CONNECTED,
    [Digit("1"), Issued(1), StaffAnswered("leg-2", "counselor02"), Issued(1)],
    [*_TO_CONNECTED, StaffDigit("*"), StaffDigit("7"), CrisisAnswered("crisis-1")],
    [*_TO_CONNECTED, StaffDigit("*"), StaffDigit("7"), CrisisAnswered("crisis-2"), StaffHungUp()],
]
STEPS = st.tuples(
    st.sampled_from(OPENINGS),
    st.lists(st.tuples(st.floats(0.0, 40.0), EVENTS), max_size=60),
)


def drive(data: st.DataObject) -> Run:
    run = Run()
    run.feed(Started(data.draw(st.booleans(), label="flagged")))
    opening, steps = data.draw(STEPS, label="steps")
    for dt, drawn in [(1.0, event) for event in opening] + steps:
        run.now += dt
        if isinstance(drawn, FeatureCode):
            run.feed(StaffDigit("*"))
            drawn = StaffDigit(drawn.key)
        elif isinstance(drawn, Issued):
            issued = run.playbacks[-drawn.back :]
            drawn = PlaybackDone(issued[0] if issued else "c1-pb0")
        run.feed(drawn)
    if not run.flow.ended:
        run.now += 1.0
        run.feed(CallerHungUp())
    return run


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_journey_finishes_exactly_once(data: st.DataObject) -> None:
    run = drive(data)
    assert run.flow.ended
    assert sum(isinstance(c, Finish) for c in run.commands) == 1


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_every_answered_leg_is_bridged_or_hung_up(data: st.DataObject) -> None:
    run = drive(data)
    for leg in run.answered:
        assert leg in run.bridged | run.hung_up | run.gone, f"{leg} answered, then left alone"
        # ... and none is left on the line once the call is over.
        assert leg in run.hung_up | run.gone, f"{leg} still up after the end"


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_nothing_after_the_end_but_hanging_up_late_answers(data: st.DataObject) -> None:
    run = drive(data)
    for event, cmds in run.after_end:
        if isinstance(event, StaffAnswered | CrisisAnswered):
            assert cmds == [HangupLeg(event.leg_id)]
        else:
            assert cmds == [], f"{cmds} after the end, for {event}"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_commands_name_the_connected_leg_and_member(data: st.DataObject) -> None:
    run = drive(data)
    connected = [c.leg_id for c in run.commands if isinstance(c, Connect)]
    listening = [c for c in run.commands if isinstance(c, StartListening)]
    assert [c.leg_id for c in listening if c.party is Party.STAFF] == connected
    for note in (c for c in run.commands if isinstance(c, NotifyStaff)):
        assert note.leg_id in connected and note.member in MEMBERS
