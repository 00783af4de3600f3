"""A caller's journey taken back after a restart of the controller: a small snapshot of the
pure machine (ivr.flow.call) that the adapter keeps durable (ivr.resume, the `live_calls`
table), and `restore`, which rebuilds the machine from it with the commands that put the
caller back where they were. Pure: no I/O, no clock (`now` comes in).

    snapshot state              restored as                  the commands
    MENU_PLAYING/MENU_WAITING   MENU_PLAYING                 listen again, the menu from the start
    INTRO/CONSENT/WAITING       WAITING (same arrival time)  re-queued by arrival time, one short
                                                             "기다려 주셔서 감사합니다", the
                                                             longest-wait timer for what is left
    CONNECTING                  CONNECTED                    bridged with the answered counselor
    CONNECTING, the staff leg   WAITING (same arrival time)  as INTRO/CONSENT/WAITING (the
      gone (`staff_gone`)                                    counselor hung up during the whisper)
    CONNECTED (talking)         CONNECTED                    the audio taps again (the bridge
                                                             stands in Asterisk); with the staff
                                                             leg gone, the caller's tap only (the
                                                             adapter then ends the call as the
                                                             counselor's hang-up)
    CONNECTED (crisis ringing)  CONNECTED (talking)          as talking; the counselor hears that
                                                             the crisis line was not reached (the
                                                             adapter hangs up the dead run's
                                                             ringing leg): `*7` rings it again
    CONNECTED (three-way)       CONNECTED (three-way)        as talking, the crisis leg with the
                                                             call again (the adapter feeds the
                                                             end of a leg gone meanwhile)
    CONNECTED (handed over)     CONNECTED (handed over)      the caller's tap; the crisis line
                                                             stays with the caller
    SURVEY                      SURVEY (the thank-you)       the survey's thank-you, then the
                                                             line hangs up: completed (the
                                                             answer window went with the dead
                                                             run; nothing is stored for it)
    anything else               None: the adapter hands the caller to recovery (apology, BYE)

A consent question still open at the restart is closed as no answer (no consent), like a
question nobody answered in time. The caller's answer already given is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ivr.flow.call import CallFlow
from ivr.flow.commands import (
    AnsweredBy,
    Command,
    ConsentAnswer,
    Enqueue,
    Listen,
    Play,
    RecordConsent,
    StartListening,
    StartTimer,
    SurveyKind,
    Target,
)
from ivr.flow.conversation import STAFF_CRISIS_UNREACHABLE as CRISIS_UNREACHABLE
from ivr.flow.conversation import Conversation, ConversationParams, PlaybackIds
from ivr.flow.conversation import State as TalkState
from ivr.flow.events import Party
from ivr.flow.record import CallEndReason, Stage
from ivr.flow.states import CONSENT_PROMPTS, MAX_WAIT_TIMER, STAGE_OF, FlowConfig, State
from ivr.flow.survey import Survey

log = logging.getLogger(__name__)

#: What a waiting caller hears once when the controller has taken their call back.
THANKS_FOR_WAITING = "thanks_for_waiting"
RESTORE_PROMPTS = frozenset({THANKS_FOR_WAITING})

_MENU = frozenset({State.MENU_PLAYING, State.MENU_WAITING})
#: The conversation's states with the counselor on the call that a restart takes back.
_WITH_COUNSELOR = frozenset(
    {TalkState.TALKING.value, TalkState.CRISIS_RINGING.value, TalkState.THREE_WAY.value}
)
_QUEUED = frozenset({State.INTRO, State.CONSENT, State.WAITING})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the journey machine needs to be rebuilt (one `live_calls` row's journey part)."""

    call_id: str
    #: The machine's state (`State` value).
    state: str
    started_at: float
    #: When the stage being counted began.
    stage_since: float
    menu_path: str = ""
    menu_failures: int = 0
    #: The caller's number had an active abuse flag.
    flagged: bool = False
    queue: str | None = None
    #: The original arrival in the queue (the place in it).
    queued_at: float | None = None
    member: str | None = None
    #: The answered staff leg (whispered to, or in the conversation).
    staff_leg: str | None = None
    answered_at: float | None = None
    #: The caller's consent answer (`ConsentAnswer` value) or None (not asked).
    consent: str | None = None
    #: The conversation's state (`conversation.State` value) when connected.
    talk: str | None = None
    #: The last playback id the call used (the adapter stops it: it may still be playing).
    last_playback: str | None = None
    #: Seconds spent in each stage before `stage_since` (`Stage` value -> seconds).
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: Times the counselor's phone was lost (a caller waiting again keeps their first answer).
    staff_lost: int = 0
    #: The crisis line's channel once it joined the call (warm transfer, `*7`).
    crisis_leg: str | None = None
    #: When the caller began waiting again after a lost counselor (their wait from then on).
    requeued_at: float | None = None


def take(flow: CallFlow) -> Snapshot:
    """The snapshot of a live journey (the adapter writes it when it differs from the last)."""
    rec = flow.record
    conv = flow.conversation
    queue = flow._queue  # noqa: SLF001 - this module is the machine's own persistence
    ids = flow._ids  # noqa: SLF001
    return Snapshot(
        call_id=flow.call_id,
        state=flow.state.value,
        started_at=rec.started_at,
        stage_since=flow._stage_since,  # noqa: SLF001
        menu_path="".join(rec.menu_path),
        menu_failures=rec.menu_failures,
        flagged=flow._flagged,  # noqa: SLF001
        queue=queue.name if queue is not None else rec.queue,
        queued_at=rec.queued_at,
        member=rec.member,
        staff_leg=conv.staff_leg if conv is not None else flow._leg,  # noqa: SLF001
        answered_at=rec.answered_at,
        consent=None if flow.consent is None else flow.consent.value,
        talk=conv.state.value if conv is not None else None,
        last_playback=f"{ids.call_id}-pb{ids.count}" if ids.count else None,
        stage_seconds={s.value: v for s, v in rec.stage_seconds.items()},
        staff_lost=rec.staff_lost,
        crisis_leg=conv.crisis_leg if conv is not None else None,
        requeued_at=rec.requeued_at,
    )


def restore(
    snap: Snapshot, config: FlowConfig, now: float, generation: str, staff_gone: bool = False
) -> tuple[CallFlow, list[Command]] | None:
    """The journey rebuilt from `snap` and the commands that resume it, or None when the
    snapshot cannot be understood (the caller goes to recovery). `generation` makes this
    run's playback ids differ from the dead run's (Asterisk may still hold those).
    `staff_gone`: the snapshot's staff leg is no longer in Asterisk (the counselor hung up
    while no controller ran)."""
    try:
        state = State(snap.state)
    except ValueError:
        return None
    queue = config.menu.queues.get(snap.queue) if snap.queue else None
    flow = CallFlow(snap.call_id, config, snap.started_at)
    flow._ids = PlaybackIds(f"{snap.call_id}-{generation}")  # noqa: SLF001
    flow._flagged = snap.flagged  # noqa: SLF001
    flow._now = now  # noqa: SLF001
    rec = flow.record
    rec.menu_path = list(snap.menu_path)
    rec.menu_failures = snap.menu_failures
    rec.staff_lost = snap.staff_lost
    try:
        rec.stage_seconds = {Stage(k): float(v) for k, v in snap.stage_seconds.items()}
        consent = ConsentAnswer(snap.consent) if snap.consent else None
    except ValueError:
        return None
    if state in _MENU:
        cmds = _as(flow, State.MENU_PLAYING, snap, now)
        return flow, [*cmds, Listen(config.menu.voice_phrases), *flow._menu()]  # noqa: SLF001
    if queue is None or snap.queued_at is None:
        return None
    flow._queue = queue  # noqa: SLF001
    rec.queue, rec.queued_at = queue.name, snap.queued_at
    if state in _QUEUED or (state is State.CONNECTING and staff_gone):
        return flow, _waiting(flow, snap, consent, now)
    if state is State.SURVEY:
        return flow, _survey_thanks(flow, snap, consent, now)
    if state is State.CONNECTED and snap.talk == TalkState.HANDED_OVER.value:
        return _handed_over(flow, snap, consent, now)
    if snap.staff_leg is None or snap.member is None:
        return None
    if state is State.CONNECTING:
        flow._consent = consent  # noqa: SLF001
        flow._leg, rec.member = snap.staff_leg, snap.member  # noqa: SLF001
        rec.answered_at = snap.answered_at  # set: a caller waiting again after a lost counselor
        cmds = _as(flow, State.WAITING, snap, now)
        return flow, [*cmds, *flow._connect(now)]  # noqa: SLF001
    if state is State.CONNECTED and snap.talk in _WITH_COUNSELOR:
        cmds = _connected(flow, snap, consent, now)
        if staff_gone:  # no tap on a leg that is gone
            cmds = [
                c for c in cmds if not (isinstance(c, StartListening) and c.party is Party.STAFF)
            ]
        return flow, cmds
    return None


def _as(flow: CallFlow, state: State, snap: Snapshot, now: float) -> list[Command]:
    """Put the machine in `state`; the stage the caller was in counts until now. The caller's
    audio tap again (the dead run's went with it)."""
    flow.state = state
    old, stage = STAGE_OF.get(State(snap.state)), STAGE_OF[state]
    flow._where = stage  # noqa: SLF001
    flow._stage_since = snap.stage_since  # noqa: SLF001
    if old is not None and old is not stage:
        flow.record.spent(old, now - snap.stage_since)
        flow._stage_since = now  # noqa: SLF001
    log.info("call %s: restored as %s (was %s)", flow.call_id, state.value, snap.state)
    return [StartListening(Party.CALLER)]


def _waiting(
    flow: CallFlow, snap: Snapshot, consent: ConsentAnswer | None, now: float
) -> list[Command]:
    config = flow.config
    assert flow._queue is not None and snap.queued_at is not None  # noqa: SLF001
    cmds = _as(flow, State.WAITING, snap, now)
    if consent is ConsentAnswer.PENDING:
        consent = ConsentAnswer.NONE  # the question was cut off: no answer, no consent
        cmds.append(RecordConsent(consent, AnsweredBy.NONE, CONSENT_PROMPTS))
    flow._consent = consent  # noqa: SLF001
    if snap.staff_lost:  # waiting again after a lost counselor: the first answer stays
        flow.record.member, flow.record.answered_at = snap.member, snap.answered_at
        flow.record.requeued_at = snap.requeued_at
        flow._talked_with = snap.member  # noqa: SLF001
    waited = now - (snap.requeued_at or snap.queued_at)
    return [
        *(c for c in cmds if not isinstance(c, StartListening)),  # no tap while waiting
        Listen(()),
        Enqueue(flow._queue.name, snap.queued_at),  # noqa: SLF001
        StartTimer(MAX_WAIT_TIMER, max(config.max_wait - waited, 0.0)),
        # Then the announcements as usual (the playback's end starts the reassurance timer).
        flow._play((THANKS_FOR_WAITING,), Target.HOLDING),  # noqa: SLF001
    ]


def _connected(
    flow: CallFlow, snap: Snapshot, consent: ConsentAnswer | None, now: float
) -> list[Command]:
    assert snap.staff_leg is not None and snap.member is not None
    cmds = _as(flow, State.CONNECTED, snap, now)
    rec = flow.record
    rec.member, rec.answered_at = snap.member, snap.answered_at
    params = ConversationParams(flow.config.both_silence_notify, flow.config.caller_silence_notify)
    ids = flow._ids  # noqa: SLF001
    conv = Conversation(flow.call_id, params, ids, snap.staff_leg, snap.member, consent)
    flow.conversation = conv
    cmds += [Listen(()), StartListening(Party.STAFF, leg_id=snap.staff_leg)]
    if snap.talk == TalkState.THREE_WAY.value and snap.crisis_leg is not None:
        conv.state, conv.crisis_leg = TalkState.THREE_WAY, snap.crisis_leg
    elif snap.talk != TalkState.TALKING.value:
        # The crisis line was ringing (the dead run's leg is hung up) or had no leg: the
        # counselor hears it was not reached, and can ring it again.
        cmds.append(Play(ids.next(), (CRISIS_UNREACHABLE,), Target.LEG, snap.staff_leg))
    return cmds


def _handed_over(
    flow: CallFlow, snap: Snapshot, consent: ConsentAnswer | None, now: float
) -> tuple[CallFlow, list[Command]] | None:
    """The counselor had left a warm transfer: the crisis line stays with the caller."""
    if snap.crisis_leg is None or snap.member is None:
        return None
    cmds = _as(flow, State.CONNECTED, snap, now)
    rec = flow.record
    rec.member, rec.answered_at = snap.member, snap.answered_at
    rec.end_reason = CallEndReason.CRISIS_TRANSFER
    params = ConversationParams(flow.config.both_silence_notify, flow.config.caller_silence_notify)
    ids = flow._ids  # noqa: SLF001
    # Built as with the counselor, then as the counselor's leaving left it (their leg gone).
    conv = Conversation(flow.call_id, params, ids, snap.crisis_leg, snap.member, consent)
    conv.staff_leg, conv.crisis_leg = None, snap.crisis_leg
    conv.state, conv.end_reason = TalkState.HANDED_OVER, CallEndReason.CRISIS_TRANSFER
    flow.conversation = conv
    return flow, [*cmds, Listen(())]


def _survey_thanks(
    flow: CallFlow, snap: Snapshot, consent: ConsentAnswer | None, now: float
) -> list[Command]:
    """The counselor had hung up and the caller was answering the survey: the thank-you that
    ends every survey, then the line hangs up (completed). Listening is not needed for it."""
    queue = flow._queue  # noqa: SLF001
    assert queue is not None
    _as(flow, State.SURVEY, snap, now)
    flow._where = Stage.STAFF  # noqa: SLF001 - the call ended with the counselor's part
    flow._consent = consent  # noqa: SLF001
    rec = flow.record
    rec.member, rec.answered_at = snap.member, snap.answered_at
    rec.staff_left_at = snap.stage_since  # the survey began as the counselor left
    kind = queue.survey or SurveyKind.SCORE  # the line's survey may have been turned off
    flow.survey = Survey(flow.call_id, kind, flow._ids, queue.survey_timeout)  # noqa: SLF001
    return flow.survey._thank()  # noqa: SLF001 - the answer window went with the dead run
