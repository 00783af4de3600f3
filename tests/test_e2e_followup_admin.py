"""End to end: the follow-up worklist through the running product's API and `ivr-admin` (run
from this checkout): a referral recorded while the call is up → its monitoring task, due
`monitoring_after_days` later, with the number sealed from the live call; the referral's
status; a companion series enrolled after the call (the number from the citizen's stored
seal) → a task for that companion; stopping it; the agency catalog; and that no output ever
holds the caller's number; and a paused controller offering nothing until it is resumed."""

from __future__ import annotations

import json
import shlex

from ivr.app import SECRETS
from ivr.crypto import Sealer
from ivr.followup import model
from ivr.keys import AGENCIES
from tests.conftest import TEST_CALLER_NUMBER, Hotline, PhoneFactory
from tests.e2e_ringgroup_support import counselor, dial, ivr_admin, member, rows_where, until
from tests.test_e2e_followup import add_task, followup, task_row  # noqa: F401 - the fixture


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


async def test_a_paused_controller_offers_no_task_and_a_resumed_one_does(
    followup: Hotline,  # noqa: F811 - the fixture imported above (it resumes the dialling)
    phones: PhoneFactory,
) -> None:
    hotline = followup
    ctrl = hotline.controller
    out = await admin(hotline, "followup pause --reason '통신사 점검'")
    assert out.startswith("전화 걸기를 멈췄습니다 paused: 상담사, 사회복지사, 동행단"), out
    state = json.loads(await admin(hotline, "status --json"))["followup_dialling"]
    assert state["paused"] is True
    assert state["teams"]["counselors"]["reason"] == "통신사 점검"
    assert "모두 멈춤 all paused" in await admin(hotline, "status")
    task_id, _ = await add_task(hotline, model.TaskType.CALLBACK)
    c2 = await counselor(hotline, phones, "counselor02")
    await until(lambda: member(hotline, "counselor02")["state"] == "idle", what="counselor02 free")
    await ctrl.submit(ctrl.followup.cycle)  # a whole cycle, in turn with the events
    assert not ctrl.followup.offers
    assert task_row(hotline, task_id)["locked_by"] is None
    out = await admin(hotline, "followups --type callback")
    assert "모두 멈춤 all paused" in out and "통신사 점검" in out, out

    out = await admin(hotline, "followup resume --team counselors")
    assert out.startswith("다시 겁니다 resumed: 상담사"), out
    incoming = await c2.wait_for("incoming", timeout=30)
    assert incoming["headers"].get("X-IVR120-Task") == str(task_id)
    # Paused again while it rings: turned down, the task is free and offered to nobody.
    await admin(hotline, "followup pause")
    await c2.reject(486)
    await until(
        lambda: not ctrl.followup.offers and task_row(hotline, task_id)["locked_by"] is None,
        what="the offer over and the task free",
    )
    (attempt,) = rows_where(hotline, "SELECT * FROM followup_attempts WHERE task_id=?", task_id)
    assert attempt["result"] == "staff_no_answer"
    await admin(hotline, f"followup close {task_id} --outcome cancelled")
