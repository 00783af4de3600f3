"""The report's figures (ivr.report.figures) on a small hand-made case: eight inbound calls and
one follow-up call on 2026-11-02 and 2026-11-03 (a Monday and a Tuesday, Seoul time), every
expected number worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from ivr.privacy import ANONYMOUS
from ivr.report import channels, figures
from ivr.report.rows import CallRow, Period, TaskRow, seoul
from ivr.report.text import TEXT
from ivr.timezone import SEOUL

PERIOD = Period(dt.date(2026, 11, 2), dt.date(2026, 11, 3))


def at(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SEOUL).timestamp()


def call(
    n: int,
    start: float,
    outcome: str,
    *,
    who: str = "h1",
    key: str = "5",
    wait: float | None = None,
    talk: float | None = None,
    member: str | None = None,
    consent: str | None = None,
    direction: str = "inbound",
    repeat: bool = False,
) -> CallRow:
    queued = None if key == "" else start + 10
    answered = None if talk is None or queued is None or wait is None else queued + wait
    queue = {"5": "loneliness", "1": "general", "": None}[key]
    end = start + 10 + (wait or 0) + (talk or 0)
    return CallRow(
        f"c{n}",
        who,
        start,
        direction,
        key,
        queue,
        queued,
        answered,
        member,
        wait,
        talk,
        end,
        outcome,
        None,
        consent,
        repeat,
    )


CALLS = [
    # Monday 2 Nov
    call(1, at(2, 9), "abandoned_menu", key="", who="h1"),
    call(2, at(2, 9, 30), "completed", wait=10, talk=600, member="k1", consent="no", who="h1"),
    call(3, at(2, 21), "abandoned_consent", wait=4, who="h2"),
    call(4, at(2, 21, 10), "abandoned_queue", wait=90, consent="yes", who="h3", repeat=True),
    # Tuesday 3 Nov
    call(5, at(3, 9), "completed", wait=30, talk=1500, member="k2", consent="yes", who="h2"),
    call(6, at(3, 9, 5), "completed", key="1", wait=70, talk=200, member="k1", who="h4"),
    call(7, at(3, 10), "abandoned_intro", key="1", wait=3, who="h5"),
    call(8, at(3, 22), "abuse_ended", wait=15, talk=120, member="k2", consent="none", who="h6"),
    call(9, at(3, 11), "completed", key="", direction="outbound", talk=None, who="h1"),
]
# Offered (inbound, a line chosen): c2..c8 = 7. Answered: c2, c5, c6, c8 = 4.
# Abandoned after the choice: c3 (consent), c4 (queue), c7 (intro) = 3.


def rows(table: figures.Table) -> dict[object, tuple[object, ...]]:
    return {r[0]: r[1:] for r in table.rows}


def test_answer_rates() -> None:
    got = rows(figures.answer_rates(CALLS))
    assert got["inbound"] == (8, None)
    assert got["abandoned_menu"] == (1, None)
    assert got["offered"] == (7, 1.0)
    assert got["answered"] == (4, pytest.approx(4 / 7))
    assert got["abandoned"] == (3, pytest.approx(3 / 7))
    assert got["abandoned_intro"] == got["abandoned_consent"] == got["abandoned_queue"]
    assert got["abandoned_queue"] == (1, pytest.approx(1 / 7))


def test_waits_and_service_level() -> None:
    got = rows(figures.waits(CALLS))
    # Answered waits sorted: 10, 15, 30, 70. p50: rank 1.5 -> 22.5; p80: rank 2.4 -> 30 + .4*40
    assert got["p50_wait_s"] == (pytest.approx(22.5),)
    assert got["p80_wait_s"] == (pytest.approx(46.0),)
    assert got["p95_wait_s"] == (pytest.approx(30 + 0.85 * 40),)
    assert got["service_level_20s"] == (pytest.approx(2 / 7),)  # 10, 15 of 7 offered
    assert got["service_level_60s"] == (pytest.approx(3 / 7),)  # and 30


def test_abandonment_by_wait() -> None:
    got = rows(figures.abandonment_by_wait(CALLS))
    # waits: c2 10, c3 4 (gone), c4 90 (gone), c5 30, c6 70, c7 3 (gone), c8 15
    assert got["0-20"] == (4, 2, 0.5)
    assert got["20-60"] == (1, 0, 0.0)
    assert got["60-120"] == (2, 1, 0.5)
    assert got["300+"] == (0, 0, None)


def test_handle_times() -> None:
    got = rows(figures.handle_times(CALLS))
    # talk: 600 s = 10 min, 1500 = 25 min, 200 = 3.3 min, 120 = 2 min
    assert got == {
        "0-5": (2,),
        "5-10": (0,),
        "10-20": (1,),
        "20-30": (1,),
        "30-60": (0,),
        "60+": (0,),
    }
    assert figures.mean_handle_seconds(CALLS) == pytest.approx((600 + 1500 + 200 + 120) / 4)


def test_repeat_callers_use_earlier_calls_and_the_flag() -> None:
    got = rows(figures.repeat_callers(CALLS))
    # h1: c1 first, c2 repeat; h2: c3 first, c5 repeat; h3: c4 flagged repeat (called before the
    # period); h4, h5, h6 first. First-time: c1 c3 c6 c7 c8 = 5 calls; repeat c2 c4 c5 = 3.
    assert got["first_time"] == (5, 5, pytest.approx(5 / 8))
    assert got["repeat"] == (3, 3, pytest.approx(3 / 8))


def test_funnel() -> None:
    got = rows(figures.funnel(CALLS))
    # pressed 5: c2 c3 c4 c5 c8; answered yes/no: c2 c4 c5 (c8's "none" is no answer); yes: c4
    # c5, none withdrawn; reached: c2 c5 c8
    assert got == {
        "inbound": (8,),
        "pressed_5": (5,),
        "consent_answered_yes_no": (3,),
        "consent_not_answered": (1,),
        "consented_not_withdrawn": (2,),
        "consent_withdrawn": (0,),
        "reached_counselor": (3,),
    }


def test_funnel_counts_answers_not_silences_and_withdrawals_apart() -> None:
    """A `none` (no answer, or a counselor answered first) is not an answer, and a consent
    withdrawn with *6 is not a consent: each its own row."""
    calls = [
        call(1, at(2, 9), "completed", wait=5, talk=60, member="k1", consent="none"),
        call(2, at(2, 10), "completed", wait=5, talk=60, member="k1", consent="none"),
        call(3, at(2, 11), "completed", wait=5, talk=60, member="k1", consent="no"),
        call(4, at(2, 12), "completed", wait=5, talk=60, member="k1", consent="yes"),
        replace(
            call(5, at(2, 13), "completed", wait=5, talk=60, member="k1", consent="yes"),
            consent_withdrawn=True,
        ),
    ]
    got = rows(figures.funnel(calls))
    assert got["pressed_5"] == (5,)
    assert got["consent_answered_yes_no"] == (3,)  # c3 no, c4 yes, c5 yes (then withdrawn)
    assert got["consent_not_answered"] == (2,)
    assert got["consented_not_withdrawn"] == (1,)  # c4 only
    assert got["consent_withdrawn"] == (1,)  # c5
    assert "consent_answered" not in got and "consented" not in got


def test_withheld_numbers_are_not_one_repeat_caller() -> None:
    """300 calls without a number (hash "anonymous") are not 1 first-time caller and 299
    repeats: they are `unknown`, out of the shares, which are of the calls with a number."""
    withheld = [
        call(100 + i, at(2, 0) + 60 * i, "completed", who=ANONYMOUS, wait=5, talk=60)
        for i in range(300)
    ]
    got = rows(figures.repeat_callers(CALLS + withheld))
    assert got["first_time"] == (5, 5, pytest.approx(5 / 8))  # as without the withheld calls
    assert got["repeat"] == (3, 3, pytest.approx(3 / 8))
    assert got["unknown"] == (300, None, None)
    assert figures.repeat_callers(CALLS).rows[-1] == ("unknown", 0, None, None)


@pytest.mark.parametrize("lang", sorted(TEXT))
def test_every_funnel_and_caller_row_has_words(lang: str) -> None:
    """The report shows each row of these figures in words saying what it counts, in Korean
    and in English; the CSV keeps the keys."""
    for table in (figures.funnel(CALLS), figures.repeat_callers(CALLS)):
        for key, *_ in table.rows:
            assert TEXT[lang][f"{table.key}.{key}"].strip(), (lang, key)
    assert "번호 없음" in TEXT["ko"]["repeat_callers.unknown"]
    assert "*6" in TEXT[lang]["funnel.consent_withdrawn"]


def test_contacts_per_day_by_channel_and_line() -> None:
    table = figures.contacts_per_day(channels.contacts(CALLS), PERIOD)
    assert table.columns == ("date", "channel", "line", "contacts")
    got = {(d, ch, line): n for d, ch, line, n in table.rows}
    assert got[("2026-11-02", "phone", "loneliness")] == 3
    assert got[("2026-11-02", "phone", "menu")] == 1
    assert got[("2026-11-02", "phone", "general")] == 0
    assert got[("2026-11-03", "phone", "general")] == 2
    assert got[("2026-11-03", "followup", "followup")] == 1
    assert sum(got.values()) == len(CALLS)


def test_a_new_channel_is_its_contacts() -> None:
    """What the integrator adds for chats: contacts with their own channel; the table counts
    them per day and line beside the calls, with nothing else changed."""
    chats = [
        channels.Contact(at(2, 23), "chat", "loneliness"),
        channels.Contact(at(3, 1), "chat", "loneliness"),
        channels.Contact(at(3, 2), "chat", "loneliness"),
    ]
    rows = figures.contacts_per_day([*channels.contacts(CALLS), *chats], PERIOD).rows
    got = {(d, ch, line): n for d, ch, line, n in rows}
    assert got[("2026-11-02", "chat", "loneliness")] == 1
    assert got[("2026-11-03", "chat", "loneliness")] == 2
    assert sum(got.values()) == len(CALLS) + 3


def test_heatmap_counts_inbound_by_seoul_weekday_and_hour() -> None:
    grid = {(wd, h): n for wd, h, n in figures.arrivals_heatmap(CALLS).rows}
    assert len(grid) == 168
    assert grid[(0, 9)] == 2 and grid[(0, 21)] == 2  # Monday
    assert grid[(1, 9)] == 2 and grid[(1, 10)] == 1 and grid[(1, 22)] == 1  # Tuesday
    assert grid[(1, 11)] == 0  # the outbound call is not an arrival
    assert sum(grid.values()) == 8


def test_followups_requested_and_done() -> None:
    tasks = [
        TaskRow(1, "callback", at(2, 10), "done", "reached", at(2, 12)),
        TaskRow(2, "callback", at(2, 11), "done", "reached", at(2, 15)),
        TaskRow(3, "callback", at(3, 9), "open", None, None),
        TaskRow(4, "welfare", at(3, 9), "unreachable", "unreachable", at(3, 20)),
    ]
    got = rows(figures.followups(tasks))
    assert got["callback"] == (3, 2, 0, 1, 0, pytest.approx(3.0))  # 2 h and 4 h -> median 3
    assert got["welfare"] == (1, 0, 1, 0, 0, None)


def test_period_hours_of_week() -> None:
    occurs = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30)).hours_of_week()
    assert occurs[(6, 0)] == 5  # November 2026 has five Sundays (1, 8, 15, 22, 29)
    assert occurs[(0, 0)] == 5 and occurs[(1, 0)] == 4
    assert sum(occurs.values()) == 30 * 24


def test_silence_and_abuse() -> None:
    silences = ["gentle_prompt", "gentle_prompt", "welfare_callback", "told_counselor"]
    got = rows(figures.silence_and_abuse(CALLS, silences, [1, 1, 2, 3, 4]))
    assert got["silence_gentle_prompt"] == (2,)
    assert got["silence_welfare_callback"] == got["silence_told_counselor"] == (1,)
    assert got["abuse_ended_calls"] == (1,)  # c8
    assert got["flags_set"] == (5,)
    assert (got["flags_level_1"], got["flags_level_2"], got["flags_level_3"]) == ((2,), (1,), (2,))


def test_handle_time_is_talk_plus_wrapup() -> None:
    """The handle-time distribution and the staffing's handle time count the counselor's
    wrap-up after each call (calls.wrapup_seconds); a call without one recorded counts none."""
    calls = [
        replace(call(1, at(2, 9), "completed", wait=5, talk=240, member="k1"), wrapup_seconds=120),
        replace(call(2, at(2, 9, 20), "completed", wait=5, talk=240, member="k1")),
        replace(
            call(3, at(2, 9, 40), "completed", wait=5, talk=540, member="k2"), wrapup_seconds=0
        ),
    ]
    got = rows(figures.handle_times(calls))
    # c1: 4 + 2 = 6 min; c2: 4 min (no wrap-up recorded); c3: 9 min
    assert got["0-5"] == (1,) and got["5-10"] == (2,)
    assert sum(n for (n,) in got.values()) == 3
    assert figures.handle_times(calls).columns == ("handle_min", "calls")
    assert figures.mean_handle_seconds(calls) == pytest.approx((360 + 240 + 540) / 3)
    from ivr.report import erlang

    staffing = {(r[0], r[1]): r for r in erlang.staffing(calls, PERIOD, None).rows}
    # Three answered in Monday 9h (< MIN_ANSWERED): the period's mean handle time, with wrap-up
    assert staffing[(0, 9)][3] == pytest.approx((360 + 240 + 540) / 3)


def test_the_fast_seoul_hour_is_the_zone_s() -> None:
    from ivr.report.rows import seoul_hour

    t0 = dt.datetime(2020, 1, 1, tzinfo=SEOUL).timestamp()
    for i in range(0, 10 * 366 * 24, 7):  # every 7th hour for ten years
        ts = t0 + i * 3600 + 1234.5
        assert seoul_hour(ts) == seoul(ts).hour
