"""End to end: the follow-up worklist through the running product's API and `ivr-admin` (run
from this checkout): a referral recorded while the call is up → its monitoring task, due
`monitoring_after_days` later, with the number sealed from the live call; the referral's
status; a companion series enrolled after the call (the number from the citizen's stored
seal) → a task for that companion; stopping it; the agency catalog; and that no output ever
holds the caller's number."""

from __future__ import annotations

import json
import shlex

from ivr.app import SECRETS
from ivr.crypto import Sealer
from ivr.keys import AGENCIES
from tests.conftest import TEST_CALLER_NUMBER, Hotline, PhoneFactory
from tests.e2e_ringgroup_support import dial, ivr_admin, rows_where, until


async def admin(hotline: Hotline, line: str) -> str:
    rc, out, err = await ivr_admin(hotline, *shlex.split(line))
    assert rc == 0, (line, out, err)
    assert TEST_CALLER_NUMBER not in out + err, (line, out, err)
    return out


async def test_referral_monitoring_companion_and_agencies_through_ivr_admin(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    hotline = clean_hotline
    sealer = Sealer(hotline.app[SECRETS].data_key)
    caller, call_id = await dial(hotline, phones, "citizen")
    await until(
        lambda: rows_where(hotline, "SELECT 1 FROM calls WHERE call_id=?", call_id),
        what="the call's row",
    )

    # During the call: the counselor records a referral; the number comes from the live call.
    out = await admin(hotline, f"referral add {call_id} mapo-meals --note '점심 모임 안내'")
    assert out.startswith("연계를 기록했습니다 referral #"), out
    assert "전화할 수 없습니다" not in out, out
    [ref] = rows_where(hotline, "SELECT * FROM referrals WHERE call_id=?", call_id)
    assert ref["status"] == "proposed" and ref["agency"] == "mapo-meals"
    [task] = rows_where(hotline, "SELECT * FROM followup_tasks WHERE referral_id=?", ref["id"])
    assert task["type"] == "monitoring" and task["team"] == "social_workers"
    after = hotline.settings.monitoring_after_days * 86400
    assert abs(task["due_at"] - (task["created_at"] + after)) < 1e-3, task
    assert sealer.open(task["number_sealed"], task["sealed_for"]) == TEST_CALLER_NUMBER
    await caller.hangup()
    await hotline.wait_row(call_id)

    out = await admin(hotline, f"referral set {ref['id']} --status linked")
    assert out.strip() == f"연계 상태를 바꿨습니다 referral #{ref['id']}: 연계 linked", out
    out = await admin(hotline, f"referrals --call {call_id}")
    assert out.splitlines()[0].startswith("번호 id"), out
    assert "마포 이웃밥상" in out and "연계 linked" in out, out

    # The worklist, as a table and as JSON (--json before the subcommand).
    out = await admin(hotline, "followups --type monitoring")
    assert out.splitlines()[0].startswith("번호 id"), out
    assert any(line.startswith(f"{task['id']} ") for line in out.splitlines()), out
    listed = json.loads(await admin(hotline, "--json followups --team social_workers"))
    [mine] = [t for t in listed if t["id"] == task["id"]]
    assert mine["dialable"] is True and "number_sealed" not in mine
    out = await admin(hotline, f"followup show {task['id']}")
    assert f"#{task['id']}" in out and "연계 확인 monitoring" in out, out

    # After the call: a companion series; the number from the citizen's stored seal.
    out = await admin(
        hotline, f"companion enrol {call_id} --companion companion03 --every 7d --at '화 15:00'"
    )
    assert out.startswith("동행을 시작했습니다 enrolled"), out
    [series] = rows_where(hotline, "SELECT * FROM companion_series WHERE call_id=?", call_id)
    assert series["member"] == "companion03" and series["stopped_at"] is None
    assert sealer.open(series["number_sealed"], series["sealed_for"]) == TEST_CALLER_NUMBER
    [ctask] = rows_where(hotline, "SELECT * FROM followup_tasks WHERE series_id=?", series["id"])
    assert ctask["type"] == "companion" and ctask["member"] == "companion03"
    assert ctask["status"] == "open"
    out = await admin(hotline, "companions")
    assert "companion03" in out and "화 15:00" in out, out
    out = await admin(hotline, f"companion stop {call_id} --json")  # --json after
    assert json.loads(out) == [{"series_id": series["id"], "cancelled_tasks": [ctask["id"]]}]
    [ctask] = rows_where(hotline, "SELECT * FROM followup_tasks WHERE id=?", ctask["id"])
    assert ctask["status"] == "cancelled"

    # Staff fix the task to a social worker and move it; then set the outcome by hand.
    out = await admin(hotline, f"followup assign {task['id']} --member social02")
    assert out.strip() == f"담당자를 정했습니다 assigned: #{task['id']} → social02", out
    out = await admin(hotline, f"followup reschedule {task['id']} --due +2h")
    assert out.startswith(f"예정을 바꿨습니다 rescheduled: #{task['id']} → "), out
    [moved] = rows_where(hotline, "SELECT * FROM followup_tasks WHERE id=?", task["id"])
    assert moved["member"] == "social02" and moved["due_at"] < task["due_at"]
    # The monitoring call's outcome, set by hand, confirms the referral.
    out = await admin(hotline, f"followup close {task['id']} --outcome reached")
    assert f"연계 referral #{ref['id']}: 확인 confirmed" in out, out
    [ref] = rows_where(hotline, "SELECT * FROM referrals WHERE id=?", ref["id"])
    assert ref["status"] == "confirmed"

    out = await admin(hotline, "agencies --category 법률")
    assert out.splitlines()[0].startswith("기관 id") and "대한법률구조공단" in out, out

    rc, out, err = await ivr_admin(hotline, "referral", "add", call_id, "no-such-agency")
    assert rc == 1 and "기관 목록에 없는 기관입니다" in err, (out, err)

    # `ivr-admin reload` reads the catalog again (a bad one is refused: test_followup_agencies).
    before = hotline.app[AGENCIES].current
    answer = json.loads(await admin(hotline, "--json reload"))
    assert answer["agencies"] == len(before)
    assert hotline.app[AGENCIES].current is not before
