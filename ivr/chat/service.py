"""The chat channel's adapter: live chats in memory, fed to their pure journeys
(ivr.chat.journey), whose commands it carries out against the counselors' ring group (the
controller's, ivr.staff.chatoffers), the store (ivr.chat.records) and the screens.

The screens (the citizen's page, the counselors' desks) follow by server-sent events: every
change wakes the streams it concerns — a chat's topic (its citizen's page) and the desk topics of
its counselor and of the counselor it is offered to (:meth:`ChatService.changed`) — and each
woken stream sends its view again when it differs. A message wakes two streams, not all of
them: with 200 chats and 50 desks open that is what keeps a message's cost flat.
A counselor counts as present for chat offers while their desk's chat stream is open.

One background task (:meth:`ChatService.run`) ticks every `TICK` seconds: queues chats that
could not be queued yet (the controller was not up), withdraws offers not taken within
`chat_offer_seconds`, plans new offers, and forgets ended chats after `KEEP_ENDED` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ivr.audit import audit
from ivr.chat import records, restore
from ivr.chat.journey import (
    NOTICE_WITHDRAWING,
    NOTICE_WITHDRAWN,
    Accepted,
    ChatJourney,
    ChatParams,
    Closed,
    Command,
    Connected,
    Deliver,
    Dequeue,
    Enqueue,
    Event,
    FlagIdentity,
    ForgetTranscript,
    Guide,
    Left,
    NoCounselor,
    NoCounselorReason,
    Notice,
    RecordConsent,
    Refused,
    Release,
    RequestCallback,
    Step,
)
from ivr.chat.live import LiveChat
from ivr.chat.queue import Counselors, Queue
from ivr.context import safe_store
from ivr.crypto import Sealer
from ivr.flow.commands import CallbackConsent, CallbackReason
from ivr.followup.requests import FollowupRequests, describe
from ivr.keys import SECRETS, SETTINGS, STORE
from ivr.privacy import caller_hash
from ivr.staff.ringgroup import Channel, RingGroup
from ivr.store import Store, WriteDeferred

log = logging.getLogger(__name__)

TICK = 0.25
#: Seconds an ended chat stays on both screens (then it is forgotten here).
KEEP_ENDED = 600.0
#: A waiting citizen whose page has been closed this long has left (the chat is abandoned).
CITIZEN_GONE = 60.0
#: A connected citizen whose page has been closed this long has left: the chat ends (completed)
#: and the counselor's place is free again. Longer than CITIZEN_GONE: a phone's browser in the
#: background or on a bad line comes back, and the counselor can still write meanwhile.
CITIZEN_LEFT_CONNECTED = 600.0
#: A guided start not finished is forgotten after this long without the citizen's page (the
#: consent question here; the buttons before it are kept by the citizen: ivr.chat.cookies).
KEEP_IDLE = 3600.0
#: Live chats at once at most without settings (chat_max_live); beyond, a new one is refused.
MAX_LIVE = 500
OFFER_PREFIX = "chatoffer-"
#: Seconds a citizen's request waits at most for the chats of a previous run to be taken up.
READY_WAIT = 5.0
#: The defaults of chat_offer_seconds and chat_max_wait (ivr.config), without settings.
OFFER_SECONDS = 30.0
MAX_WAIT = 600.0
#: Steps of the guided start (before the queue).
GUIDED = frozenset({Step.GUIDE, Step.INFO, Step.CONSENT})


class ChatService:
    def __init__(
        self, main: Any, params: ChatParams | None = None, counselors: Queue | None = None
    ) -> None:
        """`counselors`: where chats queue (a :class:`Counselors` of `main` unless given)."""
        self.main = main
        self.params = params or ChatParams()
        self.counselors: Queue = counselors if counselors is not None else Counselors(main)
        self.chats: dict[str, LiveChat] = {}
        self._by_identity: dict[str, str] = {}
        #: Identities whose chat is being started (a double click on 상담사와 채팅하기), each
        #: with what is set when that start is over.
        self._starting: dict[str, asyncio.Event] = {}
        self.present: Counter[str] = Counter()
        self._topics: dict[str, asyncio.Event] = {}
        self._sealer: Sealer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.recovery = restore.Recovery()
        #: Set once the chats a previous run left open are taken up (ivr.chat.restore).
        self.recovered = self.recovery.done
        self._seen_at = -1e18
        #: Told (chat, command) of every command of a chat before it is carried out: the
        #: wallboard shows abuse endings as they happen (ivr.wallboard.alerts). Listeners only
        #: take note; one that fails is logged and ignored.
        self.command_listeners: list[Callable[[LiveChat, Command], None]] = []

    # -- resources (read from the product at use: the desk is built before they open) -----
    @property
    def store(self) -> Store | None:
        return self.main.get(STORE)

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            self._sealer = Sealer(self.main[SECRETS].data_key)
        return self._sealer

    def group(self) -> RingGroup | None:
        """The counselors' ring group (the controller's), or None while it is not up."""
        return self.counselors.group()

    def changed(self, topic: str) -> asyncio.Event:
        """Set at the next change of `topic` ("chat:<id>" or "desk:<member>")."""
        event = self._topics.get(topic)
        if event is None:
            event = self._topics[topic] = asyncio.Event()
        return event

    def notify(self, *topics: str) -> None:
        """Wake the streams of `topics` (they compare their view with the last one sent)."""
        for topic in topics:
            event = self._topics.pop(topic, None)
            if event is not None:
                event.set()

    def notify_chat(self, chat: LiveChat) -> None:
        """Wake the chat's page and the desks it is on (its counselor's, its offer's)."""
        topics = [f"chat:{chat.chat_id}"]
        if chat.journey.member:
            topics.append(f"desk:{chat.journey.member}")
        if chat.offer is not None:
            topics.append(f"desk:{chat.offer.member}")
        self.notify(*topics)

    def notify_queue(self) -> None:
        """The queue moved: every waiting citizen's place may have changed."""
        self.notify(*(f"chat:{c}" for c, w in self.chats.items() if w.journey.step is Step.WAITING))

    # -- chats -----------------------------------------------------------------------------
    def chat_of(self, identity: str) -> LiveChat | None:
        chat_id = self._by_identity.get(identity)
        return self.chats.get(chat_id) if chat_id else None

    def live(self) -> int:
        """Chats not ended (the ended ones stay KEEP_ENDED on the screens)."""
        return sum(1 for c in self.chats.values() if c.journey.step is not Step.ENDED)

    def full(self, max_live: int = MAX_LIVE) -> bool:
        return self.live() >= max_live

    async def start(self, identity: str, now: float, guide: Guide | None = None) -> LiveChat:
        """A new chat for `identity`, going on from `guide` (the citizen's guided start; None:
        one beginning `now`). Its previous chat, if any, must have ended; check :meth:`full`
        first."""
        level = 0
        store = self.store
        if store is not None:
            started = self._starting[identity] = asyncio.Event()
            try:
                flag = await store.active_flag(identity, now)
            finally:
                if self._starting.get(identity) is started:
                    del self._starting[identity]
                started.set()
            level = flag.level if flag else 0
            # A second request of the identity may have started one meanwhile: that one.
            running = self.chat_of(identity)
            if running is not None and running.journey.step is not Step.ENDED:
                return running
        chat_id = f"chat-{secrets.token_hex(8)}"
        journey = ChatJourney.resume(chat_id, self.params, guide or Guide(now), level > 0)
        chat = LiveChat(journey, identity, level, last_seen=now)
        self.chats[chat_id] = chat
        self._by_identity[identity] = chat_id
        log.info("chat %s: started (identity %s, flag %d)", chat_id, identity, level)
        return chat

    def resumed(
        self, journey: ChatJourney, identity: str, flag_level: int, queued_at: float, now: float
    ) -> LiveChat:
        """A chat a previous run left open, taken up again (ivr.chat.restore): a waiting one
        is queued by the next tick with its first `queued_at`, a connected one counts against
        its counselor again."""
        chat = LiveChat(journey, identity, flag_level, queued_at=queued_at, stored=True)
        chat.last_seen, chat.recount = now, journey.step is Step.CONNECTED
        self.chats[chat.chat_id] = chat
        self._by_identity[identity] = chat.chat_id
        self.notify_chat(chat)
        return chat

    async def ready(self, timeout: float = READY_WAIT) -> None:
        """Wait, at most `timeout` seconds, until the chats a previous run left open are taken
        up: a citizen's page coming back after a restart finds their chat, and a new chat is
        not started beside it."""
        if not self.recovered.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.recovered.wait(), timeout)

    def starting(self, identity: str) -> asyncio.Event | None:
        """Set when the chat of `identity` an earlier request is starting has started; None
        when none is being started."""
        return self._starting.get(identity)

    def forget(self, identity: str) -> None:
        """The citizen starts afresh (their ended chat stays until KEEP_ENDED for the desk)."""
        self._by_identity.pop(identity, None)

    async def feed(self, chat: LiveChat, event: Event, now: float) -> list[Refused]:
        """Run one event; carry out its commands. Returns the refusals (for the sender).
        Raises ChatStateError when the event does not fit the chat's step."""
        old = chat.journey.step
        commands = chat.journey.handle(event, now)
        if chat.journey.step is not old:
            log.info("chat %s: %s -> %s", chat.chat_id, old, chat.journey.step)
        refused = []
        offered = chat.offer
        for cmd in commands:
            if isinstance(cmd, Refused):
                refused.append(cmd)
                continue
            for listener in self.command_listeners:
                try:
                    listener(chat, cmd)
                except Exception:
                    log.exception("chat %s: a command listener failed", chat.chat_id)
            await self._do(chat, cmd, now)
        if offered is not None:
            self.notify(f"desk:{offered.member}")  # the offer may be gone (the citizen left)
        self.notify_chat(chat)
        if chat.journey.step is not old:
            self.notify_queue()
        if old is Step.CONSENT and chat.journey.step is Step.WAITING and not self.available(now):
            log.info("chat %s: no counselor can take chats now", chat.chat_id)
            await self.feed(chat, NoCounselor(NoCounselorReason.UNAVAILABLE), now)
        return refused

    def available(self, now: float) -> bool:
        """Someone can take a chat: the controller is up, chats are on, and a counselor on
        shift (logged in, not paused) has the chat page open."""
        group = self.group()
        if group is None:
            return False
        present = {m for m, n in self.present.items() if n > 0}
        return group.chat_staffed(present, self.counselors.on_shift(group, now))

    async def _do(self, chat: LiveChat, cmd: Command, now: float) -> None:
        store = self.store
        j = chat.journey
        match cmd:
            case RecordConsent(yes, at):
                audit.info("chat %s: consent %s", chat.chat_id, "yes" if yes else "no")
                if store is not None:
                    group = self.group()
                    chat.stored = await safe_store(
                        records.opened(
                            store,
                            chat.chat_id,
                            chat.identity,
                            j.started_at,
                            at,
                            yes,
                            j.path,
                            chat.flag_level,
                            group.name if group is not None else None,
                        )
                    )
            case Enqueue(since):
                chat.queued_at = since
                self._enqueue(chat, since)
            case Dequeue():
                group = self.group()
                if group is not None and chat.queued:
                    group.dequeue(chat.chat_id)
                chat.queued, chat.offer = False, None
            case Release(member):
                group = self.group()
                if group is not None:
                    group.chat_ended(member, chat.chat_id)
            case Deliver(sender, text, at, keep):
                line = chat.add(sender, text, at)
                if keep and store is not None:
                    await safe_store(
                        records.message(
                            store, self.sealer, chat.chat_id, line.seq, sender, at, text
                        )
                    )
            case Notice(text):
                chat.add("system", text, now)
            case Connected(member, at):
                log.info("chat %s: taken by %s", chat.chat_id, member)
                if store is not None:
                    await safe_store(records.answered(store, chat.chat_id, member, at))
            case Closed(outcome, at, by):
                chat.ended_at = at
                log.info("chat %s: ended (%s) by %s", chat.chat_id, outcome, by)
                if store is not None and j.consent is not None:
                    await safe_store(records.ended(store, chat.chat_id, at, outcome.value, by))
            case FlagIdentity(member):
                await self._flag(chat, member, now)
            case RequestCallback(number, at):
                await self._callback(chat, number, at)
            case ForgetTranscript(at):
                # Whatever was written of it: consent was given (chat.stored may be False
                # with the consent row, and so its messages, still pending).
                await self._forget(chat, at)

    async def _forget(self, chat: LiveChat, at: float) -> None:
        """Delete what was kept of the chat; the citizen is told it is deleted once it is
        (after the writes pending before it, retried by the store until the database takes
        them: :meth:`_confirm_forgotten`)."""
        store = self.store
        done = store is None
        if store is not None:
            try:
                done = await records.forget(store, chat.chat_id, at)
            except Exception:
                log.exception("chat %s: the withdrawal's delete failed; retried", chat.chat_id)
        if done:
            self._line(chat, "system", NOTICE_WITHDRAWN, at)
            return
        self._line(chat, "system", NOTICE_WITHDRAWING, at)
        task = asyncio.create_task(self._confirm_forgotten(chat, at), name="chat forget")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm_forgotten(self, chat: LiveChat, at: float) -> None:
        """Retry until the withdrawal's delete is written, then tell the citizen."""
        store = self.store
        assert store is not None
        while True:
            await asyncio.sleep(store.retry_seconds)
            try:
                if not store.pending:  # the deferred delete (and all before it) written
                    if await store.fetch(
                        "SELECT 1 FROM chats WHERE chat_id = ? AND withdrawn_at IS NULL"
                        " AND consent = 'yes'",
                        (chat.chat_id,),
                    ):
                        await records.forget(store, chat.chat_id, at)  # it was dropped: again
                        continue
                    break
                await store.flush()
            except Exception:
                log.exception("chat %s: the withdrawal's delete failed; retried", chat.chat_id)
        self._line(chat, "system", NOTICE_WITHDRAWN, time.time())
        self.notify_chat(chat)

    @staticmethod
    def _line(chat: LiveChat, sender: str, text: str, at: float) -> None:
        chat.add(sender, text, at)

    def _enqueue(self, chat: LiveChat, since: float) -> None:
        group = self.group()
        if chat.journey.step is not Step.WAITING:
            return  # taken (or left) while its consent was being stored: never queue it again
        if group is None:
            return  # queued by the next tick once the controller is up
        group.enqueue(chat.chat_id, since, Channel.CHAT)
        chat.queued = True

    async def _flag(self, chat: LiveChat, member: str, now: float) -> None:
        store = self.store
        if store is None:
            audit.warning("chat %s: abuse end by %s; no store to flag in", chat.chat_id, member)
            return
        try:
            flag = await store.flag_caller(chat.identity, chat.chat_id, member, now)
        except Exception as exc:  # noqa: BLE001 - the end stands; the flag is logged
            audit.warning("chat abuse flag of %s not written: %s", chat.identity, exc)
            return
        audit.info(
            "chat abuse flag: identity %s level %d, chat %s, counselor %s",
            chat.identity,
            flag.level,
            chat.chat_id,
            member,
        )

    async def _callback(self, chat: LiveChat, number: str, now: float) -> None:
        """A callback request from the chat, as a caller's key 1 makes one: a follow-up task
        (ivr.followup.requests) and a `callbacks` row with the number sealed; the number's
        keyed hash is the caller's (so the citizen's calls and chats meet)."""
        store = self.store
        if store is None:
            log.error("chat %s: callback request lost: no store", chat.chat_id)
            return
        hashed = caller_hash(number, self.main[SECRETS].caller_hash_key)
        try:
            task = None
            if self.main[SETTINGS].followup_enabled:
                task = await FollowupRequests(store, self.sealer).task_for(
                    chat.chat_id,
                    hashed,
                    number,
                    CallbackReason.CHAT,
                    CallbackConsent.CITIZEN_CHAT,
                    None,
                    now,
                )
            sealed = self.sealer.seal(number, f"callback:{chat.chat_id}")
            await store.add_callback(
                chat.chat_id,
                hashed,
                sealed,
                now,
                CallbackReason.CHAT,
                CallbackConsent.CITIZEN_CHAT,
                None,
                task.task_id if task else None,
            )
        except WriteDeferred:
            pass  # kept in memory, written when the database can take it
        except Exception:
            log.exception("chat %s: callback request not stored", chat.chat_id)
            return
        audit.info(
            "callback request from chat %s: caller %s, %s",
            chat.chat_id,
            hashed,
            describe(task),
        )

    async def accept(self, member: str, chat_id: str, now: float) -> bool:
        """`member` takes the chat offered to them; False when the offer is gone."""
        chat = self.chats.get(chat_id)
        group = self.group()
        if chat is None or group is None or chat.offer is None or chat.offer.member != member:
            return False
        if chat.journey.step is not Step.WAITING:
            return False
        if group.chat_accepted(chat.offer.offer_id, now) is None:
            chat.offer = None
            return False
        chat.offer, chat.queued = None, False
        await self.feed(chat, Accepted(member), now)
        return True

    def decline(self, member: str, chat_id: str) -> bool:
        """`member` passes the chat offered to them on (넘기기): the next plan offers it to
        the others first. False when the offer is gone."""
        chat = self.chats.get(chat_id)
        group = self.group()
        if chat is None or group is None or chat.offer is None or chat.offer.member != member:
            return False
        log.info("chat %s: %s passed it on", chat_id, member)
        group.chat_declined(chat.offer.offer_id)
        chat.offer = None
        self.notify(f"desk:{member}")
        return True

    # -- the tick ----------------------------------------------------------------------------
    def gone(self, now: float) -> list[LiveChat]:
        """Chats whose citizen closed the page: waiting ones CITIZEN_GONE ago (to end:
        abandoned), connected ones CITIZEN_LEFT_CONNECTED ago (to end: completed)."""
        after = {Step.WAITING: CITIZEN_GONE, Step.CONNECTED: CITIZEN_LEFT_CONNECTED}
        return [
            c
            for c in self.chats.values()
            if c.journey.step in after
            and c.watchers == 0
            and now - c.last_seen > after[c.journey.step]
        ]

    def tick(self, now: float, offer_seconds: float) -> set[str]:
        """Queue, expire and plan offers; forget old chats. Returns the topics changed."""
        changed: set[str] = set()
        for chat_id, chat in list(self.chats.items()):
            if chat.watchers:
                chat.last_seen = now
            ended = chat.ended_at is not None and now - chat.ended_at > KEEP_ENDED
            idle = chat.journey.step in GUIDED and now - chat.last_seen > KEEP_IDLE
            if ended or idle:
                del self.chats[chat_id]
                if self._by_identity.get(chat.identity) == chat_id:
                    del self._by_identity[chat.identity]
                changed |= {f"chat:{chat_id}", f"desk:{chat.journey.member}"}
        group = self.group()
        if group is None:
            return changed
        waiting = [c for c in self.chats.values() if c.journey.step is Step.WAITING]
        for chat in waiting:
            if not chat.queued:
                self._enqueue(chat, chat.queued_at or chat.journey.started_at)
                changed |= {f"chat:{c.chat_id}" for c in waiting}
            if chat.offer is not None and now - chat.offered_at >= offer_seconds:
                log.info("chat %s: %s did not take it in time", chat.chat_id, chat.offer.member)
                group.chat_declined(chat.offer.offer_id)
                changed.add(f"desk:{chat.offer.member}")
                chat.offer = None
        shift = self.counselors.on_shift(group, now)
        present = {m for m, n in self.present.items() if n > 0}
        plan = group.plan_chats(present, OFFER_PREFIX, now, shift)
        for offer in plan.withdrawn:
            gone = self.chats.get(offer.chat_id)
            if gone is not None and gone.offer == offer:
                gone.offer = None
                changed.add(f"desk:{offer.member}")
        for offer in plan.offers:
            live = self.chats.get(offer.chat_id)
            if live is None:  # not ours (cannot happen: only this service queues chats)
                group.dequeue(offer.chat_id)
                continue
            log.info("chat %s: offered to %s", offer.chat_id, offer.member)
            live.offer, live.offered_at = offer, now
            changed.add(f"desk:{offer.member}")
        return changed

    async def step(
        self, now: float, offer_seconds: float = OFFER_SECONDS, max_wait: float = MAX_WAIT
    ) -> None:
        """One tick: the chats whose citizen is gone end (abandoned), those that waited
        `max_wait` end unanswered (with the callback form), then :meth:`tick`."""
        store = self.store
        if not self.recovered.is_set() and store is not None:
            await self.recovery.attempt(self, store, now)
        await restore.recount(self, now)
        if store is not None and now - self._seen_at >= restore.SEEN_EVERY:
            self._seen_at = now
            live = [c.chat_id for c in self.chats.values() if c.stored and c.ended_at is None]
            with contextlib.suppress(WriteDeferred):
                await records.seen(store, live, now)
        for chat in self.gone(now):
            log.info("chat %s: the citizen's page is gone; ended", chat.chat_id)
            await self.feed(chat, Left(), now)
        for chat in list(self.chats.values()):
            since = chat.requeued_at or chat.queued_at
            if chat.journey.step is Step.WAITING and since is not None and now - since >= max_wait:
                log.info("chat %s: waited %.0f s; the maximum", chat.chat_id, now - since)
                await self.feed(chat, NoCounselor(NoCounselorReason.MAX_WAIT), now)
        self.notify(*self.tick(now, offer_seconds))

    async def run(self, stopping: asyncio.Event, clock: Any) -> None:
        while not stopping.is_set():
            try:
                settings = self.main[SETTINGS]  # read at each tick: a reload applies at once
                await self.step(
                    clock(), float(settings.chat_offer_seconds), float(settings.chat_max_wait)
                )
            except Exception:
                log.exception("chat tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), TICK)
