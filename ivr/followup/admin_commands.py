"""The follow-up commands of ``ivr-admin`` (through the running controller's API):

    ivr-admin followups [--team T] [--type T] [--status S|all] [--due WHEN]
                                              the worklist (open tasks unless --status)
    ivr-admin followup show ID                one task with its attempts
    ivr-admin followup assign ID --member M   fix it to a staff member (--member none: free)
    ivr-admin followup reschedule ID --due WHEN   (now, +2h, +1d, 2026-12-02 10:00)
    ivr-admin followup close ID --outcome O   reached, more_help, not_linked, unreachable,
                                              cancelled, opted_out
    ivr-admin followup pause [--team T] [--reason TEXT]   stop dialling (every team without
                                              --team); requests still become tasks
    ivr-admin followup resume [--team T]      dial again
    ivr-admin followup dialling               paused or dialling, per team (also in `status`
                                              and under `followups`)
    ivr-admin companion enrol CALL --companion ID --every 7d --at "화 15:00"
    ivr-admin companion stop SERIES|CALL      stop the series, cancel its open task
    ivr-admin companions [--all]              companion series
    ivr-admin agencies [--category C] [--district D]   the partner-agency catalog
    ivr-admin referrals [--call CALL] [--status S]     referrals, newest first
    ivr-admin referral add CALL AGENCY [--note TEXT]   a referral and its monitoring call
    ivr-admin referral set ID --status linked|confirmed|failed [--note TEXT]

Korean output with English headings; ``--json`` anywhere on the line prints the raw answer.
Reads and changes are audited by the controller with the login name (``--by`` to change it).
No output ever holds a citizen's number: a task shows only whether it can be dialled.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any
from urllib.parse import urlencode

from ivr.admin_client import Route, call_api, table, when, yes_no
from ivr.config import Settings

COMMANDS = ("followups", "followup", "companion", "companions", "agencies", "referrals", "referral")

TYPE_KO = {
    "callback": "콜백",
    "welfare": "안부 확인",
    "in_depth": "심층 상담",
    "monitoring": "연계 확인",
    "companion": "동행",
}
TEAM_KO = {"counselors": "상담사", "social_workers": "사회복지사", "companions": "동행단"}
STATUS_KO = {
    "open": "대기",
    "done": "완료",
    "unreachable": "연락 안 됨",
    "cancelled": "취소",
    "opted_out": "수신 거부",
}
OUTCOME_KO = {
    "reached": "통화함",
    "more_help": "추가 지원 필요",
    "not_linked": "연계 안 됨",
    "unreachable": "연락 안 됨",
    "opted_out": "수신 거부",
    "cancelled": "취소",
}
REFERRAL_KO = {"proposed": "제안", "linked": "연계", "confirmed": "확인", "failed": "실패"}
OUTCOMES = tuple(OUTCOME_KO)
TASK_ACTIONS = ("show", "assign", "reschedule", "close")
DIALLING_ACTIONS = ("pause", "resume", "dialling")
#: The dialling state's API (ivr.followup.control).
DIALLING_ROUTE: Route = ("GET", "/api/dialling", None)


def _ko(names: dict[str, str], value: Any) -> str:
    return f"{names.get(str(value), str(value))} {value}" if value is not None else "-"


def add_commands(sub: Any) -> None:
    by = getpass.getuser()
    p = sub.add_parser("followups", help="the follow-up worklist")
    p.add_argument("--team", choices=tuple(TEAM_KO))
    p.add_argument("--type", choices=tuple(TYPE_KO))
    p.add_argument("--status", default="open", choices=(*STATUS_KO, "all"))
    p.add_argument("--due", help="due by: now, today, +2h, 2026-12-02, '2026-12-02 10:00'")
    p.add_argument("--by", default=by, help=argparse.SUPPRESS)
    p = sub.add_parser(
        "followup", help="one task: show, assign, reschedule, close; dialling: pause, resume"
    )
    p.add_argument("action", choices=(*TASK_ACTIONS, *DIALLING_ACTIONS))
    p.add_argument("id", type=int, nargs="?", help="the task (show, assign, reschedule, close)")
    p.add_argument("--team", choices=tuple(TEAM_KO), help="pause, resume: this team only")
    p.add_argument("--reason", help="pause: why (kept and shown, e.g. 통신사 점검)")
    p.add_argument("--member", help="assign: the staff member (none: anyone of the team)")
    p.add_argument("--due", help="reschedule: now, +30m, +2h, +1d, '2026-12-02 10:00'")
    p.add_argument("--outcome", choices=OUTCOMES, help="close: the outcome")
    p.add_argument("--by", default=by, help="who does it (recorded; default: login name)")
    p = sub.add_parser("companion", help="enrol a caller with a companion, or stop a series")
    p.add_argument("action", choices=("enrol", "stop"))
    p.add_argument("target", help="enrol: the call id; stop: a series id or a call id")
    p.add_argument("--companion", help="enrol: the companion (e.g. companion07)")
    p.add_argument("--every", default="7d", help="enrol: the interval, e.g. 7d or 14d")
    p.add_argument("--at", help='enrol: weekday and time, e.g. "화 15:00" or "Tue 15:00"')
    p.add_argument("--by", default=by)
    p = sub.add_parser("companions", help="companion series")
    p.add_argument("--all", action="store_true", help="also the stopped ones")
    p.add_argument("--by", default=by, help=argparse.SUPPRESS)
    p = sub.add_parser("agencies", help="the partner-agency catalog")
    p.add_argument("--category", help="주거 식사 건강 정신건강 일자리 돌봄 법률 (or English)")
    p.add_argument("--district", help="a Seoul district, e.g. 마포구")
    p = sub.add_parser("referrals", help="referrals to partner agencies")
    p.add_argument("--call", help="only this call's")
    p.add_argument("--status", choices=tuple(REFERRAL_KO))
    p.add_argument("--by", default=by, help=argparse.SUPPRESS)
    p = sub.add_parser("referral", help="add a referral on a call, or set its status")
    p.add_argument("action", choices=("add", "set"))
    p.add_argument("target", help="add: the call id; set: the referral id")
    p.add_argument("agency", nargs="?", help="add: the agency id (ivr-admin agencies)")
    p.add_argument("--status", choices=("linked", "confirmed", "failed"), help="set: the status")
    p.add_argument("--note")
    p.add_argument("--by", default=by)


def _query(path: str, **params: Any) -> str:
    given = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(given)}" if given else path


class UsageError(ValueError):
    pass


def route(args: argparse.Namespace) -> Route:
    """The API request a command makes."""
    cmd, by = args.cmd, getattr(args, "by", None)
    if cmd == "followups":
        status = None if args.status == "all" else args.status
        path = _query(
            "/api/followups", team=args.team, type=args.type, status=status, due=args.due, who=by
        )
        return ("GET", path, None)
    if cmd == "followup":
        if args.action == "dialling":
            return DIALLING_ROUTE
        if args.action in ("pause", "resume"):
            if args.id is not None:
                raise UsageError(f"{args.action} takes no task id (--team for one team)")
            change: dict[str, Any] = {"team": args.team, "by": by}
            if args.action == "pause":
                change["reason"] = args.reason
            return ("POST", f"/api/dialling/{args.action}", change)
        if args.id is None:
            raise UsageError(f"{args.action} needs the task id")
        if args.action == "show":
            return ("GET", _query(f"/api/followups/{args.id}", who=by), None)
        body: dict[str, Any] = {"by": by}
        if args.action == "assign":
            if not args.member:
                raise UsageError("assign needs --member (none to free the task)")
            body["member"] = None if args.member == "none" else args.member
        elif args.action == "reschedule":
            if not args.due:
                raise UsageError("reschedule needs --due")
            body["due"] = args.due
        else:
            if not args.outcome:
                raise UsageError(f"close needs --outcome ({', '.join(OUTCOMES)})")
            body["outcome"] = args.outcome
        return ("POST", f"/api/followups/{args.id}/{args.action}", body)
    if cmd == "companion":
        if args.action == "stop":
            return ("POST", "/api/companions/stop", {"target": args.target, "by": by})
        if not args.companion or not args.at:
            raise UsageError('enrol needs --companion ID and --at "화 15:00"')
        body = {
            "call_id": args.target,
            "companion": args.companion,
            "every": args.every,
            "at": args.at,
            "by": by,
        }
        return ("POST", "/api/companions", body)
    if cmd == "companions":
        return ("GET", _query("/api/companions", all="1" if args.all else None, who=by), None)
    if cmd == "agencies":
        return (
            "GET",
            _query("/api/agencies", category=args.category, district=args.district),
            None,
        )
    if cmd == "referrals":
        return ("GET", _query("/api/referrals", call=args.call, status=args.status, who=by), None)
    if args.action == "add":
        if not args.agency:
            raise UsageError("referral add needs CALL AGENCY")
        body = {"call_id": args.target, "agency": args.agency, "note": args.note, "by": by}
        return ("POST", "/api/referrals", body)
    if not args.status or not args.target.isdigit():
        raise UsageError("referral set needs a referral id and --status linked|confirmed|failed")
    body = {"status": args.status, "note": args.note, "by": by}
    return ("POST", f"/api/referrals/{args.target}", body)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        request = route(args)
    except UsageError as exc:
        print(f"ivr-admin {args.cmd}: {exc}", file=sys.stderr)
        return 2
    code = call_api(args, settings, request, render)
    if code == 0 and args.cmd == "followups" and not args.json:
        # Under the worklist: whether it is being dialled (--json keeps the list as it is).
        # The list is served without a controller; the dialling state is not: the list stands.
        if call_api(args, settings, DIALLING_ROUTE, lambda _, d: render_dialling(d)) != 0:
            print("(발신 상태를 알 수 없습니다 / dialling state unknown)", file=sys.stderr)
    return code


# -- rendering -------------------------------------------------------------------------------
def render(cmd: str, data: Any) -> str:
    if cmd == "followups":
        return render_tasks(data)
    if cmd == "followup":
        if "teams" in data:
            return render_dialling(data)
        return render_task(data) if "attempts_list" in data else render_action(data)
    if cmd == "companion":
        return render_companion(data)
    if cmd == "companions":
        return render_series(data)
    if cmd == "agencies":
        return render_agencies(data)
    if cmd == "referrals":
        return render_referrals(data)
    return render_referral(data)


def _deadline(t: dict[str, Any]) -> str:
    """The task's deadline (an in-depth call: one working day), marked when it has passed."""
    if t.get("deadline") is None:
        return "-"
    return when(t["deadline"]) + (" 지남 overdue" if t.get("overdue") else "")


def render_tasks(tasks: list[dict[str, Any]]) -> str:
    if not tasks:
        return "후속 전화 작업 없음 no follow-up tasks"
    return table(
        [
            "번호 id",
            "유형 type",
            "팀 team",
            "상태 status",
            "예정 due",
            "기한 deadline",
            "시도 tries",
            "담당 member",
            "전화 dial",
            "발신자 caller",
        ],
        [
            [
                t["id"],
                _ko(TYPE_KO, t["type"]),
                TEAM_KO.get(t["team"], t["team"]),
                _ko(STATUS_KO, t["status"]),
                when(t["due_at"]),
                _deadline(t),
                t["attempts"],
                t["member"],
                yes_no(t["dialable"]),
                t["caller_hash"][:10],
            ]
            for t in tasks
        ],
    )


def render_task(t: dict[str, Any]) -> str:
    lines = [
        f"후속 전화 작업 follow-up task #{t['id']}",
        f"유형 type: {_ko(TYPE_KO, t['type'])}   팀 team: {_ko(TEAM_KO, t['team'])}",
        f"상태 status: {_ko(STATUS_KO, t['status'])}"
        f"   결과 outcome: {_ko(OUTCOME_KO, t['outcome'])}",
        f"예정 due: {when(t['due_at'])}   기한 deadline: {_deadline(t)}"
        f"   만듦 created: {when(t['created_at'])} (by {t['requested_by'] or '-'})",
        f"시도 attempts: {t['attempts']}   연락 횟수 contacts: {t['contacts']}"
        f"   전화 가능 dialable: {yes_no(t['dialable'])}",
        f"담당 member: {t['member'] or '-'}   발신자 caller: {t['caller_hash'][:10]}"
        f"   통화 call: {t['call_id'] or '-'}",
    ]
    if t.get("referral_id") is not None:
        lines.append(f"연계 referral: #{t['referral_id']}")
    if t.get("series_id") is not None:
        lines.append(f"동행 series: #{t['series_id']}")
    if t.get("closed_at") is not None:
        lines.append(f"닫힘 closed: {when(t['closed_at'])} by {t['closed_by'] or '-'}")
    if t.get("note"):
        lines.append("메모 note:")
        lines += [f"  {line}" for line in str(t["note"]).splitlines()]
    lines.append("시도 기록 attempts:")
    if not t["attempts_list"]:
        lines.append("  -")
    for a in t["attempts_list"]:
        talk = a.get("talk_seconds")
        lines.append(
            f"  {when(a['started_at'])} {a['member'] or '-'} → {a['result'] or '진행 중 running'}"
            + (f" (SIP {a['sip_cause']})" if a.get("sip_cause") else "")
            + (f" {talk:.0f}초" if talk else "")
        )
    return "\n".join(lines)


def render_action(d: dict[str, Any]) -> str:
    task = f"#{d['id']}"
    if d["action"] == "assign":
        return f"담당자를 정했습니다 assigned: {task} → {d.get('member') or '팀 누구나 anyone'}"
    if d["action"] == "reschedule":
        return f"예정을 바꿨습니다 rescheduled: {task} → {when(d['due_at'])}"
    lines = [
        f"닫았습니다 closed: {task} ({_ko(STATUS_KO, d['status'])}, "
        f"{_ko(OUTCOME_KO, d['outcome'])})"
    ]
    for rid, status in d.get("referrals") or ([d["referral"]] if d.get("referral") else []):
        lines.append(f"연계 referral #{rid}: {_ko(REFERRAL_KO, status)}")
    if d.get("in_depth_task"):
        lines.append(f"심층 상담 작업 in-depth task: #{d['in_depth_task']}")
    if d.get("next_companion_task"):
        lines.append(
            f"다음 동행 전화 next companion call: #{d['next_companion_task']} "
            f"{when(d['next_companion_due'])}"
        )
    return "\n".join(lines)


def render_companion(d: Any) -> str:
    if isinstance(d, list):  # stop
        return "\n".join(
            f"동행을 멈췄습니다 stopped: series #{s['series_id']}; 취소한 작업 cancelled tasks: "
            + (", ".join(f"#{t}" for t in s["cancelled_tasks"]) or "-")
            for s in d
        )
    s = d["series"]
    return (
        f"동행을 시작했습니다 enrolled: series #{s['id']} with {s['member']}, {s['schedule']}\n"
        f"첫 전화 first call: task #{d['task']} {when(d['due_at'])}"
        f"   전화 가능 dialable: {yes_no(s['dialable'])}"
    )


def render_series(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "동행 없음 no companion series"
    return table(
        [
            "번호 id",
            "동행단원 companion",
            "일정 schedule",
            "시작 started",
            "멈춤 stopped",
            "발신자 caller",
        ],
        [
            [
                s["id"],
                s["member"],
                s["schedule"],
                when(s["started_at"]),
                when(s["stopped_at"]),
                s["caller_hash"][:10],
            ]
            for s in rows
        ],
    )


def render_agencies(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "기관 없음 no agencies"
    return table(
        ["기관 id", "이름 name", "분류 category", "지역 district", "연락처 contact", "시간 hours"],
        [
            [a["id"], a["name"], a["category"], a["district"], a["contact"], a["hours"]]
            for a in rows
        ],
    )


def render_referrals(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "연계 없음 no referrals"
    return table(
        [
            "번호 id",
            "통화 call",
            "기관 agency",
            "상태 status",
            "갱신 updated",
            "요청자 by",
            "발신자 caller",
        ],
        [
            [
                r["id"],
                r["call_id"],
                r["agency_name"] or r["agency"],
                _ko(REFERRAL_KO, r["status"]),
                when(r["updated_at"]),
                r["created_by"],
                r["caller_hash"][:10],
            ]
            for r in rows
        ],
    )


def render_referral(d: dict[str, Any]) -> str:
    if "referral" not in d:  # set
        return f"연계 상태를 바꿨습니다 referral #{d['id']}: {_ko(REFERRAL_KO, d['status'])}"
    r = d["referral"]
    line = f"연계를 기록했습니다 referral #{r['id']}: {r['agency']} (call {r['call_id']})"
    if d["monitoring_task"] is None:
        why = {"opted_out": "수신 거부한 시민 the citizen opted out"}.get(
            d.get("why_not") or "", str(d.get("why_not"))
        )
        return f"{line}\n연계 확인 전화 없음 no monitoring call: {why}"
    dial = "" if d["dialable"] else " — 전화번호 없음, 전화할 수 없습니다 no number to dial"
    return (
        f"{line}\n연계 확인 전화 monitoring call: task #{d['monitoring_task']} "
        f"{when(d['due_at'])}{' (merged)' if d['merged'] else ''}{dial}"
    )


def render_dialling(d: dict[str, Any]) -> str:
    """Paused or dialling, per team (GET /api/dialling, the answer to pause/resume, /status)."""
    lines = []
    if d.get("action"):
        done = "전화 걸기를 멈췄습니다 paused" if d["action"] == "pause" else "다시 겁니다 resumed"
        changed = ", ".join(TEAM_KO.get(t, t) for t in d["changed"])
        lines.append(f"{done}: {changed or '바뀐 팀 없음 no change'}")
    paused = [t for t, state in d["teams"].items() if state["paused"]]
    if d["paused"]:
        state = "모두 멈춤 all paused"
    elif paused:
        state = "일부 멈춤 partly paused (" + ", ".join(TEAM_KO.get(t, t) for t in paused) + ")"
    else:
        state = "전화 거는 중 dialling"
    lines.append(f"후속 전화 걸기 follow-up dialling: {state}")
    rows = []
    for team, t in d["teams"].items():
        on = "멈춤 paused" if t["paused"] else "거는 중 dialling"
        rows.append([TEAM_KO.get(team, team), on, when(t["since"]), t["by"], t["reason"]])
    lines.append(table(["팀 team", "상태 state", "부터 since", "누가 by", "사유 reason"], rows))
    return "\n".join(lines)
