"""The adapter's middle layer — command effects, the staff driver, recording capture — against
an in-process fake ARI server, for the error paths a real Asterisk won't produce on demand:
404 on a vanished channel, 409, 500, timeouts, a store that raises, and the two failure
policies (call control -> recovery; bookkeeping -> the call goes on, retried, audited, and
the counselor's phone reads "저장하지 못했습니다"). Real SQLite, real AriClient, real rooms.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.ari.client import AriClient
from ivr.config import load_settings
from ivr.context import ActiveCall
from ivr.controller import Controller
from ivr.effects import NOT_SAVED
from ivr.flow import call as flow
from ivr.flow.menu import load_menu
from ivr.paths import project_file
from ivr.pbx.secrets import load_or_create
from ivr.staff.roster import load_roster
from ivr.store import Store
from ivr.tap import Tap
from tests.conftest import write_roster

MEMBER = "counselor01"
CALL = "1700000000.1"
#: The fake's "slow" answers take this long; the client gives up after REQUEST_TIMEOUT.
SLOW, REQUEST_TIMEOUT = 3.0, 0.5


@dataclass
class FakeAri:
    """Answers each REST request from `script` ((method, path) -> status or "slow"), else 200.
    Records every request as (method, path, query)."""

    script: dict[tuple[str, str], int | str] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    #: Requests held until their event is set (then answered from `script`).
    gates: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def paths(self, method: str, prefix: str) -> list[str]:
        """The paths of the `method` requests received so far that start with `prefix`."""
        return [p for m, p, _ in self.requests if m == method and p.startswith(prefix)]

    async def request_arrives(self, method: str, prefix: str, timeout: float = 10) -> None:
        """Until the fake has received a `method` request for a path starting with `prefix`."""
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: self.paths(method, prefix)), timeout
            )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/ari/{tail:.*}", self.rest)
        return app

    async def rest(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.match_info["tail"]
        self.requests.append((method, path, dict(request.query)))
        async with self.arrived:
            self.arrived.notify_all()
        if (gate := self.gates.get((method, path))) is not None:
            await gate.wait()
        answer = self.script.get((method, path), 200)
        if answer == "slow":
            await asyncio.sleep(SLOW)
            answer = 200
        if answer != 200:
            return web.json_response({"message": f"scripted {answer}"}, status=int(answer))
        if (method, path) == ("GET", "endpoints/PJSIP"):
            return web.json_response([{"resource": MEMBER, "state": "online"}])
        if method == "GET":
            return web.json_response([])
        return web.json_response({})

    def sent(self, method: str, path: str) -> list[dict[str, str]]:
        return [q for m, p, q in self.requests if (m, p) == (method, path)]


@dataclass
class Rig:
    fake: FakeAri
    controller: Controller
    store: Store
    seen: list[tuple[flow.Command, BaseException | None]]

    @property
    def db(self) -> Path:
        settings = self.controller.settings
        return settings.state_path(settings.database)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.db)
        try:
            return list(db.execute(sql))
        finally:
            db.close()

    def call(
        self, state: flow.State = flow.State.CONNECTED, member: str | None = MEMBER
    ) -> ActiveCall:
        """A call in progress (as the flow would have it), known to the controller."""
        c = self.controller
        call = ActiveCall(CALL, flow.CallFlow(CALL, c.flow_config, 0.0), "hash-1", "0299990000")
        call.flow.state = state
        call.flow.record.member = member
        c.calls[CALL] = call
        return call

    async def run(self, call: ActiveCall, *commands: flow.Command) -> None:
        await self.controller.effects.run(call, list(commands))

    async def next_input(self, timeout: float = 10) -> None:
        """Handle one input of the loop's queue (as the running loop would)."""
        item = await asyncio.wait_for(self.controller._inputs.get(), timeout)
        await self.controller._handle(item)

    def carried_out(self, kind: type[flow.Command]) -> list[BaseException | None]:
        return [err for cmd, err in self.seen if isinstance(cmd, kind)]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    fake = FakeAri()
    server = TestServer(fake.app(), host="127.0.0.1", port=0)
    await server.start_server()
    settings = load_settings(
        env={},
        overrides={
            "state_dir": tmp_path / "state",
            "counselors": MEMBER,
            "agents": "agent01",
            "roster_file": write_roster(tmp_path / "roster.toml", (MEMBER,)),
        },
    )
    secrets = load_or_create(tmp_path / "secrets.json", settings.staff_endpoints)
    url = str(server.make_url("/ari"))
    ari = AriClient(url, "u", "p", settings.ari_app, request_timeout=REQUEST_TIMEOUT)
    store = await Store.open(settings.state_path(settings.database))
    seen: list[tuple[flow.Command, BaseException | None]] = []
    controller = Controller(
        ari,
        store,
        settings,
        load_menu(project_file(settings.menu_file)),
        secrets,
        load_roster(settings.roster_file),
        observer=lambda cmd, err: seen.append((cmd, err)),
    )
    controller.effects.retry_delays = (0.01, 0.01, 0.01)
    try:
        yield Rig(fake, controller, store, seen)
    finally:
        await store.close()
        await ari.close()
        await server.close()


def recovered(rig: Rig) -> bool:
    return bool(rig.fake.sent("POST", f"channels/{CALL}/continue"))


# -- call control ------------------------------------------------------------------------
async def test_a_404_on_a_vanished_channel_is_skipped_without_recovery(rig: Rig) -> None:
    call = rig.call(flow.State.MENU_WAITING)
    rig.fake.script[("POST", f"channels/{CALL}/play/{CALL}-pb1")] = 404
    await rig.run(call, flow.Play(f"{CALL}-pb1", ("menu_main",)), flow.Answer())
    assert rig.carried_out(flow.Play) != [None]  # it failed ...
    assert rig.carried_out(flow.Answer) == [None]  # ... and the next command still ran
    assert not rig.carried_out(flow.Recover) and not recovered(rig)
    assert CALL in rig.controller.calls


@pytest.mark.parametrize("answer", [409, 500, "slow"])
async def test_a_failed_call_control_command_sends_the_caller_to_recovery(
    rig: Rig, answer: int | str
) -> None:
    call = rig.call(flow.State.MENU_WAITING)
    rig.fake.script[("POST", "bridges")] = answer
    await rig.run(call, flow.Hold(), flow.Answer())
    assert rig.carried_out(flow.Hold)[0] is not None
    assert rig.carried_out(flow.Recover) == [None] and recovered(rig)
    assert not rig.carried_out(flow.Answer), "commands after the failure were carried out"
    assert CALL not in rig.controller.calls  # the flow ended it (outcome error)
    rows = await rig.store.calls(5)
    assert rows == [] or rows[0].outcome == "error"


async def test_no_music_bridge_at_the_answer_leaves_the_menu_going_and_queueing_retries(
    rig: Rig,
) -> None:
    """The caller's holding bridge (music under the menu, issue 14) cannot be made at the
    answer: the menu plays anyway, and the Hold of the queue tries the bridge again."""
    call = rig.call(flow.State.MENU_PLAYING)
    rig.fake.script[("POST", "bridges")] = 500
    await rig.run(call, flow.Answer(), flow.Play(f"{CALL}-pb1", ("menu_main",)))
    assert rig.carried_out(flow.Answer) == [None]
    assert rig.carried_out(flow.Play) == [None]
    assert not recovered(rig) and call.holding_bridge is None
    del rig.fake.script[("POST", "bridges")]
    await rig.run(call, flow.Hold())
    assert rig.carried_out(flow.Hold) == [None] and call.holding_bridge == f"hold-{CALL}"
    assert len(rig.fake.sent("POST", "bridges")) == 2


async def test_when_even_recovery_fails_the_caller_is_hung_up(rig: Rig) -> None:
    call = rig.call(flow.State.MENU_WAITING)
    rig.fake.script[("POST", "bridges")] = 500
    rig.fake.script[("POST", f"channels/{CALL}/continue")] = 500
    await rig.run(call, flow.Hold())
    assert rig.fake.sent("DELETE", f"channels/{CALL}"), "the caller was left in silence"


# -- bookkeeping -------------------------------------------------------------------------
class RaisingStore:
    """The real store, except that the chosen writes raise (a broken database file)."""

    def __init__(self, store: Store, fails: set[str], times: int = 99) -> None:
        self._store, self.fails, self.times, self.calls = store, fails, times, 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if name not in self.fails:
            return real

        async def failing(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            if self.calls <= self.times:
                raise sqlite3.DatabaseError("database disk image is malformed")
            return await real(*args, **kw)

        return failing


async def test_a_store_that_raises_on_a_callback_never_ends_the_call(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """*8 while the database is broken: the call goes on, the request is retried, the audit
    log says so, and the counselor's phone reads that it was not saved."""
    caplog.set_level(logging.INFO, logger="ivr.audit")
    rig.controller.ctx.store = RaisingStore(rig.store, {"add_callback"})  # type: ignore[assignment]
    call = rig.call()
    request = flow.RequestCallback("social_worker", "verbal_to_counselor", MEMBER)
    await rig.run(call, request, flow.Answer())
    assert rig.carried_out(flow.Answer) == [None], "the call did not go on"
    for _ in range(len(rig.controller.effects.retry_delays)):
        await rig.next_input()
    assert CALL in rig.controller.calls and not recovered(rig)
    assert not rig.carried_out(flow.HangupCaller) and not rig.carried_out(flow.Recover)
    audit = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    assert any("RequestCallback not written" in m for m in audit), audit
    assert any("RequestCallback NOT STORED" in m for m in audit), audit
    async with asyncio.timeout(5):  # the notice is sent off the loop
        while not rig.fake.sent("PUT", "endpoints/sendMessage"):
            await asyncio.sleep(0.01)
    (notice,) = rig.fake.sent("PUT", "endpoints/sendMessage")
    assert notice["to"] == f"pjsip:{MEMBER}" and NOT_SAVED in notice["body"]


async def test_a_bookkeeping_write_that_succeeds_on_retry_is_stored(rig: Rig) -> None:
    rig.controller.ctx.store = RaisingStore(rig.store, {"add_callback"}, times=1)  # type: ignore[assignment]
    call = rig.call()
    await rig.run(call, flow.RequestCallback("social_worker", "verbal_to_counselor", MEMBER))
    await rig.next_input()
    (row,) = await rig.store.callbacks()
    assert row.call_id == CALL and row.number_sealed and b"0299990000" not in row.number_sealed
    assert not rig.fake.sent("PUT", "endpoints/sendMessage")


async def test_a_retried_callback_request_makes_one_follow_up_task(rig: Rig) -> None:
    """The first try made the task, then the callbacks row failed: the retry finds the task."""
    rig.controller.ctx.store = RaisingStore(rig.store, {"add_callback"}, times=1)  # type: ignore[assignment]
    call = rig.call()
    await rig.run(call, flow.RequestCallback("social_worker", "verbal_to_counselor", MEMBER))
    await rig.next_input()
    tasks = rig.rows("SELECT id, type, team, status, call_id FROM followup_tasks")
    assert len(tasks) == 1 and tasks[0][1:] == ("in_depth", "social_workers", "open", CALL)
    assert rig.rows("SELECT task_id FROM callbacks") == [(tasks[0][0],)]


async def test_a_flag_or_consent_that_raises_never_ends_the_call(rig: Rig) -> None:
    rig.controller.ctx.store = RaisingStore(  # type: ignore[assignment]
        rig.store, {"flag_caller", "record_consent", "silence_event", "withdraw_consent"}
    )
    call = rig.call()
    await rig.run(
        call,
        flow.RecordConsent("yes", "key", ("consent_question",)),
        flow.FlagCaller(),
        flow.RecordSilence("caller", 30.0, "notified"),
        flow.WithdrawConsent(MEMBER),
        flow.Answer(),
    )
    assert rig.carried_out(flow.Answer) == [None]
    assert not call.consent_stored  # no stored consent: nothing will be recorded
    assert CALL in rig.controller.calls and not recovered(rig)


async def test_a_locked_database_defers_the_callback_and_the_call_goes_on(
    rig: Rig,
) -> None:
    """Another process holds the write lock: the store keeps the request and writes it later."""
    rig.store.retry_seconds = 0.2
    locker = sqlite3.connect(rig.db, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    call = rig.call()
    await rig.run(
        call, flow.RequestCallback("social_worker", "verbal_to_counselor", MEMBER), flow.Answer()
    )
    assert rig.carried_out(flow.RequestCallback) == [None]
    assert rig.carried_out(flow.Answer) == [None] and not recovered(rig)
    locker.rollback()
    locker.close()
    async with asyncio.timeout(15):
        while not await rig.store.callbacks():
            await asyncio.sleep(0.1)


# -- the staff driver --------------------------------------------------------------------
async def test_the_ring_driver_keeps_the_caller_waiting_when_originate_fails(rig: Rig) -> None:
    rig.call(flow.State.WAITING, member=None)
    driver = rig.controller.staff
    queue = next(n for n, g in driver.groups.items() if MEMBER in g.members)
    rig.fake.script[("POST", "channels")] = 500
    driver.groups[queue].enqueue(CALL, 0.0)
    await driver.plan(queue)
    assert rig.fake.sent("POST", "channels"), "nobody was rung"
    assert driver.legs == {} and not driver.groups[queue].ringing_members()
    assert list(driver.groups[queue].waiting) == [CALL] and CALL in rig.controller.calls
    assert rig.rows("SELECT member, outcome FROM ring_attempts") == [(MEMBER, "failed")]


async def test_a_staff_leg_hung_up_before_we_cancel_it_is_a_404_and_ignored(rig: Rig) -> None:
    driver = rig.controller.staff
    rig.fake.script[("DELETE", "channels/gone-leg")] = 404
    await driver.cancel_leg("gone-leg")
    assert rig.fake.sent("DELETE", "channels/gone-leg")


# -- audio taps -------------------------------------------------------------------------
async def test_a_tap_closed_in_the_queue_opens_again_with_ids_of_its_own(rig: Rig) -> None:
    """The caller's tap closes while they wait and opens again at the connect: the second one's
    snoop, external media and bridge get new ids (the first one's may still be going away)."""
    call = rig.call(flow.State.WAITING)
    await rig.run(call, flow.StartListening(flow.Party.CALLER))
    first = call.taps["caller"]
    assert first.id == f"tap-caller-{CALL}"
    await rig.run(call, flow.StopListening(flow.Party.CALLER))
    assert call.taps == {} and first.closed
    assert rig.fake.sent("DELETE", f"bridges/{first.id}")
    assert rig.fake.sent("DELETE", f"channels/{first.snoop_id}")
    await rig.run(call, flow.StartListening(flow.Party.CALLER))
    again = call.taps["caller"]
    assert again.id == f"tap-caller-{CALL}-2"
    assert rig.fake.sent("POST", f"channels/{CALL}/snoop")[-1]["snoopId"] == f"{again.id}-snoop"
    await rig.run(call, flow.StopListening(flow.Party.CALLER), flow.StopListening("caller"))
    assert again.closed and rig.carried_out(flow.StopListening) == [None, None, None]


# -- recording capture -------------------------------------------------------------------
async def test_a_refused_recording_409_leaves_the_call_unrecorded_and_going(rig: Rig) -> None:
    call = rig.call()
    call.consent_stored = True
    tap = Tap(rig.controller.ari, rig.controller.journey.tap_config, CALL, "caller", lambda e: None)
    call.taps["caller"] = tap
    rig.fake.script[("POST", f"bridges/{tap.id}/record")] = 409
    await rig.run(call, flow.StartRecording(), flow.Answer())
    assert call.recording and call.recordings == {}
    assert rig.carried_out(flow.Answer) == [None] and not recovered(rig)


async def test_a_withdrawal_whose_recording_vanished_404_still_discards_and_stores(
    rig: Rig,
) -> None:
    call = rig.call()
    call.recording, call.recordings = True, {"caller": f"ivr120-{CALL}-caller"}
    await rig.store.record_consent(CALL, "yes", "key", 0.0, "consent_question", "v1", "x")
    rig.fake.script[("DELETE", f"recordings/live/ivr120-{CALL}-caller")] = 404
    await rig.run(call, flow.WithdrawConsent(MEMBER))
    assert rig.carried_out(flow.WithdrawConsent) == [None]
    assert not call.recording and call.recordings == {}
    assert rig.rows("SELECT withdrawn_by FROM consents") == [(MEMBER,)]


async def test_stopping_the_recording_for_the_survey_keeps_it_and_a_failure_goes_on(
    rig: Rig,
) -> None:
    """The stop is asked for each recording; one already gone (404) or refused (500) leaves
    the call going (the caller is in the survey) and the recordings kept for collection."""
    call = rig.call()
    names = {p: f"ivr120-{CALL}-{p}" for p in ("caller", "staff")}
    call.recording, call.recordings = True, dict(names)
    rig.fake.script[("POST", f"recordings/live/{names['caller']}/stop")] = 500
    rig.fake.script[("POST", f"recordings/live/{names['staff']}/stop")] = 404
    await rig.run(call, flow.StopRecording(), flow.Answer())
    for name in names.values():
        assert rig.fake.sent("POST", f"recordings/live/{name}/stop")
    assert rig.carried_out(flow.StopRecording) == [None] and not recovered(rig)
    assert rig.carried_out(flow.Answer) == [None]
    # Kept, as earlier segments (collected at the end; a next counselor's are new ones).
    assert not call.recording and call.recordings == {}
    assert call.all_recordings() == {name: party for party, name in names.items()}


# -- counted on /metrics (ivr/metrics.py) ------------------------------------------------
def _errors(rig: Rig) -> dict[str, float]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from ivr.metrics import LiveCollector, snapshot

    collector, registry = LiveCollector(), CollectorRegistry()
    collector.latest = snapshot(rig.controller, None, None, rig.controller.clock())
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        s.labels["where"]: s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "ivr120_errors_total"
    }


async def test_failed_commands_and_writes_are_counted_as_errors(rig: Rig) -> None:
    assert _errors(rig) == {"controller": 0, "command": 0, "bookkeeping": 0}
    rig.controller.ctx.store = RaisingStore(rig.store, {"add_callback"}, times=1)  # type: ignore[assignment]
    call = rig.call()
    await rig.run(call, flow.RequestCallback("social_worker", "verbal_to_counselor", MEMBER))
    await rig.next_input()  # the retry is written
    assert _errors(rig) == {"controller": 0, "command": 0, "bookkeeping": 1}
    rig.fake.script[("POST", "bridges")] = 500
    await rig.run(call, flow.Hold())
    assert _errors(rig) == {"controller": 0, "command": 1, "bookkeeping": 1}


# -- command listeners (the wallboard's alerts) ------------------------------------------
async def test_command_listeners_are_told_once_even_when_a_write_is_retried(rig: Rig) -> None:
    """The wallboard hears each command once, before it is carried out; a failing listener
    is logged and the call goes on."""
    rig.controller.ctx.store = RaisingStore(rig.store, {"flag_caller"}, times=1)  # type: ignore[assignment]
    heard: list[tuple[str, flow.Command]] = []

    def broken(call: ActiveCall, cmd: Any) -> None:
        raise RuntimeError("a broken listener")

    rig.controller.ctx.command_listeners[:] = [
        broken,
        lambda c, cmd: heard.append((c.call_id, cmd)),
    ]
    call = rig.call()
    flag = flow.FlagCaller(member=MEMBER)
    await rig.run(call, flag, flow.Answer())
    await rig.next_input()  # the flag's retry: written now
    assert heard == [(CALL, flag), (CALL, flow.Answer())]
    assert rig.carried_out(flow.FlagCaller)[-1] is None and rig.carried_out(flow.Answer) == [None]
    assert rig.rows("SELECT call_id, member FROM caller_flags") == [(CALL, MEMBER)]
