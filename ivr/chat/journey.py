"""A citizen's chat, as a pure machine: events and the time in, commands out; no I/O, no clock.

    GUIDE ──Choose("info")──> INFO ──Choose("back")──> GUIDE
      │                         │
      └──Choose("chat")─────────┴──> CONSENT ──ConsentAnswered(yes/no)──> WAITING
                                                                            │ Accepted(member)
                                                                            v
                                                                        CONNECTED
    any state ──Left──> ENDED            CONNECTED ──CounselorEnded(abuse?)──> ENDED
    WAITING, CONNECTED, ENDED ──WithdrawConsent──> (same step, consent False)
    WAITING, CONNECTED ──CallbackAsked(number)──> (same step; once a chat)
    WAITING ──NoCounselor(reason)──> ENDED (outcome unanswered; the callback form stays)
    CONNECTED ──CounselorGone(since)──> WAITING (queued again with its first place)

GUIDE is the short guided start (buttons, like the phone menu): information about support
programmes (the agency catalog, INFO, by category) or "상담사와 채팅하기". :class:`Guide` is
a snapshot of the guided start, and :meth:`ChatJourney.resume` goes on from one: the adapter
keeps the guided start with the citizen and holds a journey only from CONSENT on. CONSENT
asks whether the conversation may be kept (sealed; docs/chat.md); either answer goes on to
the queue: no consent only means nothing the citizen or the counselor types is stored.
WAITING: queued into the counselors' ring group (the adapter carries out :class:`Enqueue`); the
citizen may already type (the counselor reads it on accepting). An identity flagged for abuse
is told the policy when it queues (as a flagged caller hears it) and the counselor sees the
flag.

Messages (:class:`Typed`) are refused, with a Korean reason (:class:`Refused`), when empty, too
long (``max_chars``) or, for the citizen, too fast (more than ``burst`` in ``window_seconds``).
A refused message is not delivered.
:class:`WithdrawConsent` (the citizen's button, also after the end while the page shows the
chat) stops keeping anything and deletes what was kept (:class:`ForgetTranscript`).
:class:`CallbackAsked` (the citizen typed their number: "전화로 연락받기") becomes a callback
request (:class:`RequestCallback`; the adapter seals the number at once, it is never kept in
clear nor logged), once a chat; a number that is not a Korean phone number is refused.
:class:`NoCounselor` (the adapter: nobody can take chats now, or the wait reached its
maximum) ends a waiting chat with a notice giving the 120 line and the callback form, which
stays open on the ended chat (:attr:`ChatJourney.callback_open`).
:class:`CounselorGone` (the adapter: a chat taken up after a restart whose counselor is no
longer in the roster) puts a connected chat back in the queue, at its first place, with a
notice: the citizen wanted a counselor, and another one takes it.
Events that do not fit the state raise :class:`ChatStateError` naming the state (never the
citizen's text).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from ivr.followup.agencies import CATEGORIES

Sender = Literal["citizen", "counselor"]

MSG_EMPTY = "메시지를 입력해 주세요."
MSG_TOO_LONG = "메시지가 너무 깁니다. {limit}자 이내로 나누어 보내 주세요."
MSG_TOO_FAST = "메시지를 너무 빨리 보내고 있습니다. 잠시 후에 다시 보내 주세요."
MSG_WAIT_FULL = (
    "상담사가 연결되면 이어서 보내 주세요. 지금까지 보내신 메시지는 상담사에게 그대로 보입니다."
)
MSG_CHAT_FULL = (
    "이 채팅에서 보낼 수 있는 메시지 수를 넘었습니다. 새 채팅을 시작하거나 120으로 전화해 주세요."
)
NOTICE_WAITING = (
    "상담사를 연결하고 있습니다. 잠시만 기다려 주세요. 기다리는 동안에도 메시지를 남기실 수 "
    "있습니다."
)
NOTICE_CONNECTED = "상담사가 연결되었습니다."
NOTICE_ENDED = "상담이 종료되었습니다. 이용해 주셔서 고맙습니다."
NOTICE_LEFT = "채팅을 마쳤습니다. 언제든 다시 찾아 주세요."
NOTICE_ABUSE_END = "상담사에 대한 폭언으로 상담이 종료되었습니다."
NOTICE_ABUSE_POLICY = (
    "이전 상담에서 폭언으로 상담이 종료된 기록이 있습니다. 상담사에게 폭언을 하면 상담이 "
    "종료될 수 있습니다."
)
NOTICE_KEPT = "상담 내용이 암호화되어 보관됩니다."
NOTICE_NOT_KEPT = "상담 내용은 보관되지 않습니다."
MSG_BAD_NUMBER = "전화번호를 확인해 주세요. 예: 010-1234-5678"
MSG_CALLBACK_AGAIN = "이미 전화 연락을 요청하셨습니다."
NOTICE_CALLBACK = "전화 연락 요청을 받았습니다. 상담사가 가능한 한 빨리 전화드리겠습니다."
NOTICE_NO_COUNSELOR = (
    "지금은 채팅 상담을 연결할 수 있는 상담사가 없습니다. 전화 120(외로움안녕120)으로 "
    "연락하시거나, 아래 ‘전화로 연락받기’에 전화번호를 남겨 주시면 상담사가 전화드리겠습니다."
)
NOTICE_WAITED_TOO_LONG = (
    "기다리시게 해서 죄송합니다. 지금은 상담사가 모두 상담 중입니다. "
    "전화 120(외로움안녕120)으로 연락하시거나, "
    "아래 ‘전화로 연락받기’에 전화번호를 남겨 주시면 상담사가 전화드리겠습니다."
)
NOTICE_COUNSELOR_GONE = (
    "상담사가 채팅에서 나가게 되어 다른 상담사를 연결하고 있습니다. 잠시만 기다려 주세요."
)
NOTICE_WITHDRAWING = (
    "보관 동의 철회를 받았습니다. 보관된 상담 내용을 삭제하고 있습니다. 끝나면 알려 드리겠습니다."
)
NOTICE_WITHDRAWN = (
    "보관 동의를 철회했습니다. 보관된 상담 내용은 삭제되었고 더 이상 보관되지 않습니다."
)


#: Guide buttons recorded at most (`chats.path`).
MAX_PATH = 50


class Step(enum.StrEnum):
    GUIDE = "guide"
    INFO = "info"
    CONSENT = "consent"
    WAITING = "waiting"
    CONNECTED = "connected"
    ENDED = "ended"


END_STEPS = frozenset({Step.ENDED})


class Outcome(enum.StrEnum):
    """How a chat ended (the `chats.outcome` column)."""

    COMPLETED = "completed"  # ended after a counselor took it (either side)
    ABANDONED = "abandoned"  # the citizen left while waiting
    ABUSE = "abuse"  # the counselor ended it for abuse
    GUIDE_ONLY = "guide_only"  # the citizen left before asking for a counselor
    UNANSWERED = "unanswered"  # nobody could take it, or the maximum wait was reached
    INTERRUPTED = "interrupted"  # left open by a restart (closed at the next start)


class ChatStateError(Exception):
    """An event the chat cannot take in its current step."""


@dataclass(frozen=True)
class ChatParams:
    max_chars: int = 1000
    """Longest message (characters)."""
    burst: int = 5
    """Citizen messages allowed in `window_seconds`."""
    window_seconds: float = 10.0
    max_waiting: int = 20
    """Citizen messages while waiting for a counselor (they wait, with the chat, in memory)."""
    max_lines: int = 500
    """Messages in one chat, both sides (about two hours of a lively chat)."""

    def __post_init__(self) -> None:
        if (
            min(self.max_chars, self.burst, self.max_waiting, self.max_lines) < 1
            or self.window_seconds <= 0
        ):
            raise ValueError(f"chat limits must be positive: {self}")


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Choose:
    option: str
    """A guide button: "info", "chat", "back", or "category:<category>" inside INFO."""


@dataclass(frozen=True, slots=True)
class ConsentAnswered:
    yes: bool
    """The citizen agreed that the conversation is kept (sealed)."""


@dataclass(frozen=True, slots=True)
class Accepted:
    member: str
    """The counselor who took the chat from their desk."""


@dataclass(frozen=True, slots=True)
class Typed:
    sender: Sender
    text: str


@dataclass(frozen=True, slots=True)
class Left:
    """The citizen ended the chat (the 나가기 button)."""


@dataclass(frozen=True, slots=True)
class CounselorEnded:
    abuse: bool = False
    """Ended because of abuse: the identity is flagged."""


@dataclass(frozen=True, slots=True)
class WithdrawConsent:
    """The citizen takes their consent back: nothing more is kept, the kept part is deleted."""


class NoCounselorReason(enum.StrEnum):
    UNAVAILABLE = "unavailable"  # chats off, nobody on shift on the chat page, controller down
    MAX_WAIT = "max_wait"  # waited chat_max_wait


@dataclass(frozen=True, slots=True)
class NoCounselor:
    """The adapter: no counselor will take this waiting chat (why: `reason`)."""

    reason: NoCounselorReason


@dataclass(frozen=True, slots=True)
class CallbackAsked:
    number: str = field(repr=False)
    """As typed (digits, dashes, spaces); never logged."""


@dataclass(frozen=True, slots=True)
class CounselorGone:
    """The adapter: the counselor of a connected chat is no longer in the roster (a chat
    taken up after a restart); it queues again as it first did, at `since`."""

    since: float


Event = (
    Choose
    | ConsentAnswered
    | Accepted
    | Typed
    | Left
    | CounselorEnded
    | WithdrawConsent
    | CallbackAsked
    | NoCounselor
    | CounselorGone
)


# -- commands ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Enqueue:
    """Queue the chat into the counselors' ring group (waiting since `since`)."""

    since: float


@dataclass(frozen=True, slots=True)
class Dequeue:
    """Take the chat out of the queue (the citizen left while waiting)."""


@dataclass(frozen=True, slots=True)
class Release:
    """The counselor's chat ended: it no longer counts against their chats."""

    member: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """Show a message to both sides (and keep it, with consent)."""

    sender: Sender
    text: str
    at: float
    keep: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """A line from the service itself (not kept: it is the same for everybody)."""

    text: str


@dataclass(frozen=True, slots=True)
class Refused:
    """A message was not delivered: tell its sender why."""

    sender: Sender
    reason: str


@dataclass(frozen=True, slots=True)
class RecordConsent:
    yes: bool
    at: float


@dataclass(frozen=True, slots=True)
class Connected:
    member: str
    at: float


@dataclass(frozen=True, slots=True)
class Closed:
    outcome: Outcome
    at: float
    by: str
    """"citizen" or the counselor's member name."""


@dataclass(frozen=True, slots=True)
class ForgetTranscript:
    """Delete the chat's kept messages (consent withdrawn at `at`)."""

    at: float


@dataclass(frozen=True, slots=True)
class RequestCallback:
    """Store a callback request for `number` (digits only; seal it, never log it)."""

    number: str = field(repr=False)
    at: float


@dataclass(frozen=True, slots=True)
class FlagIdentity:
    """Flag the chat identity for abuse (as a flagged caller's number)."""

    member: str


Command = (
    Enqueue
    | Dequeue
    | Release
    | Deliver
    | Notice
    | Refused
    | RecordConsent
    | Connected
    | Closed
    | FlagIdentity
    | ForgetTranscript
    | RequestCallback
)


@dataclass(frozen=True, slots=True)
class Guide:
    """Where a chat's guided start is (GUIDE, INFO, or CONSENT once the citizen asked for a
    counselor): what :meth:`ChatJourney.resume` needs to go on from there. The adapter keeps it
    with the citizen (a signed cookie), not in memory, until the citizen asks for a counselor."""

    started_at: float
    """When the guided start began (the page opened): the chat's `started_at`."""
    step: Step = Step.GUIDE
    category: str | None = None
    path: tuple[str, ...] = ()


GUIDE_STEPS = frozenset({Step.GUIDE, Step.INFO, Step.CONSENT})


@dataclass
class ChatJourney:
    chat_id: str
    params: ChatParams
    started_at: float
    flagged: bool = False
    step: Step = Step.GUIDE
    consent: bool | None = None
    member: str | None = None
    category: str | None = None
    """The programme category shown in INFO (None: the list of categories)."""
    path: list[str] = field(default_factory=list)
    """The guide buttons pressed, in order (for the record, like a call's menu path)."""
    outcome: Outcome | None = None
    callback_asked: bool = False
    _recent: deque[float] = field(default_factory=deque)
    _lines: int = 0  # messages delivered, both sides
    _waiting_lines: int = 0  # the citizen's, while waiting

    @classmethod
    def resume(
        cls, chat_id: str, params: ChatParams, guide: Guide, flagged: bool = False
    ) -> ChatJourney:
        """The journey at `guide`'s point of the guided start."""
        if guide.step not in GUIDE_STEPS:
            raise ChatStateError(f'chat {chat_id}: a guided start cannot be in "{guide.step}"')
        return cls(
            chat_id,
            params,
            guide.started_at,
            flagged=flagged,
            step=guide.step,
            category=guide.category,
            path=list(guide.path),
        )

    @classmethod
    def restored(
        cls,
        chat_id: str,
        params: ChatParams,
        started_at: float,
        consent: bool,
        member: str | None,
        *,
        flagged: bool = False,
        path: tuple[str, ...] = (),
        callback_asked: bool = False,
        lines: int = 0,
    ) -> ChatJourney:
        """A chat a previous run left open (ivr.chat.restore), as it was: CONNECTED to
        `member`, or WAITING when no counselor had taken it; `lines` the messages it had."""
        return cls(
            chat_id,
            params,
            started_at,
            flagged=flagged,
            step=Step.WAITING if member is None else Step.CONNECTED,
            consent=consent,
            member=member,
            path=list(path),
            callback_asked=callback_asked,
            _lines=lines,
        )

    def guide(self) -> Guide:
        """Where the guided start is (only while it is: GUIDE, INFO or CONSENT)."""
        if self.step not in GUIDE_STEPS:
            raise ChatStateError(f'chat {self.chat_id}: no guided start in "{self.step}"')
        return Guide(self.started_at, self.step, self.category, tuple(self.path))

    def _wrong(self, event: Event) -> ChatStateError:
        return ChatStateError(
            f'chat {self.chat_id}: cannot handle {type(event).__name__} in step "{self.step}"'
        )

    def handle(self, event: Event, now: float) -> list[Command]:
        if isinstance(event, WithdrawConsent):
            return self._withdraw(event, now)
        if isinstance(event, CallbackAsked):
            return self._callback(event, now)
        if self.step in END_STEPS:
            raise self._wrong(event)
        match event:
            case Choose(option):
                return self._choose(event, option)
            case ConsentAnswered(yes) if self.step is Step.CONSENT:
                self.consent = yes
                self.step = Step.WAITING
                out: list[Command] = [
                    RecordConsent(yes, now),
                    Enqueue(now),
                    Notice(NOTICE_KEPT if yes else NOTICE_NOT_KEPT),
                    Notice(NOTICE_WAITING),
                ]
                if self.flagged:
                    out.append(Notice(NOTICE_ABUSE_POLICY))
                return out
            case Accepted(member) if self.step is Step.WAITING:
                self.step = Step.CONNECTED
                self.member = member
                return [Connected(member, now), Notice(NOTICE_CONNECTED)]
            case CounselorGone(since) if self.step is Step.CONNECTED:
                self.step = Step.WAITING
                self.member = None
                return [Enqueue(since), Notice(NOTICE_COUNSELOR_GONE)]
            case NoCounselor(reason) if self.step is Step.WAITING:
                notice = (
                    NOTICE_WAITED_TOO_LONG
                    if reason is NoCounselorReason.MAX_WAIT
                    else NOTICE_NO_COUNSELOR
                )
                return self._end(Outcome.UNANSWERED, "system", now, notice)
            case Typed(sender, text):
                return self._typed(event, sender, text, now)
            case Left():
                return self._end(Outcome.GUIDE_ONLY, "citizen", now, NOTICE_LEFT)
            case CounselorEnded(abuse) if self.step is Step.CONNECTED:
                assert self.member is not None
                member = self.member
                if abuse:
                    out = self._end(Outcome.ABUSE, member, now, NOTICE_ABUSE_END)
                    return [*out, FlagIdentity(member)]
                return self._end(Outcome.COMPLETED, member, now, NOTICE_ENDED)
        raise self._wrong(event)

    @property
    def callback_open(self) -> bool:
        """The callback form shows: waiting, talking, or ended unanswered."""
        return self.step in (Step.WAITING, Step.CONNECTED) or (self.outcome is Outcome.UNANSWERED)

    def _callback(self, event: CallbackAsked, now: float) -> list[Command]:
        if not self.callback_open:
            raise self._wrong(event)
        if self.callback_asked:
            return [Refused("citizen", MSG_CALLBACK_AGAIN)]
        digits = "".join(c for c in event.number if c.isdigit())
        plain = all(c.isdigit() or c in "- " for c in event.number.strip())
        if not (plain and digits.startswith("0") and 9 <= len(digits) <= 11):
            return [Refused("citizen", MSG_BAD_NUMBER)]
        self.callback_asked = True
        return [RequestCallback(digits, now), Notice(NOTICE_CALLBACK)]

    def _withdraw(self, event: WithdrawConsent, now: float) -> list[Command]:
        if self.consent is not True:
            raise self._wrong(event)
        self.consent = False
        return [ForgetTranscript(now)]  # the adapter says NOTICE_WITHDRAWN once it is done

    def _choose(self, event: Choose, option: str) -> list[Command]:
        if self.step not in (Step.GUIDE, Step.INFO):
            raise self._wrong(event)
        if option == "info":
            self.step, self.category = Step.INFO, None
        elif option == "back":
            self.step, self.category = Step.GUIDE, None
        elif option == "chat":
            self.step = Step.CONSENT
        elif option.startswith("category:") and self.step is Step.INFO:
            category = option.removeprefix("category:")
            if category not in CATEGORIES:
                raise ChatStateError(f'chat {self.chat_id}: no such category in "{self.step}"')
            self.category = category
        else:
            # The option is the visitor's text: never in the message (it is logged).
            raise ChatStateError(f'chat {self.chat_id}: no such option in "{self.step}"')
        if len(self.path) < MAX_PATH:
            self.path.append(option)  # (a visitor going back and forth is not recorded more)
        return []

    def _typed(self, event: Typed, sender: Sender, text: str, now: float) -> list[Command]:
        allowed = (Step.WAITING, Step.CONNECTED) if sender == "citizen" else (Step.CONNECTED,)
        if self.step not in allowed:
            raise self._wrong(event)
        text = text.strip()
        if not text:
            return [Refused(sender, MSG_EMPTY)]
        if len(text) > self.params.max_chars:
            return [Refused(sender, MSG_TOO_LONG.format(limit=self.params.max_chars))]
        if sender == "citizen":
            while self._recent and self._recent[0] <= now - self.params.window_seconds:
                self._recent.popleft()
            if len(self._recent) >= self.params.burst:
                return [Refused(sender, MSG_TOO_FAST)]
            if self.step is Step.WAITING and self._waiting_lines >= self.params.max_waiting:
                return [Refused(sender, MSG_WAIT_FULL)]
        if self._lines >= self.params.max_lines:
            return [Refused(sender, MSG_CHAT_FULL)]
        if sender == "citizen":
            self._recent.append(now)
            self._waiting_lines += self.step is Step.WAITING
        self._lines += 1
        return [Deliver(sender, text, now, keep=bool(self.consent))]

    def _end(self, outcome: Outcome, by: str, now: float, notice: str) -> list[Command]:
        out: list[Command] = []
        if self.step is Step.WAITING:
            if outcome is not Outcome.UNANSWERED:
                outcome = Outcome.ABANDONED
            out.append(Dequeue())
        elif self.step is Step.CONNECTED:
            assert self.member is not None
            if outcome is Outcome.GUIDE_ONLY:
                outcome = Outcome.COMPLETED
            out.append(Release(self.member))
        self.step = Step.ENDED
        self.outcome = outcome
        return [*out, Notice(notice), Closed(outcome, now, by)]
