"""The summary commands of ``ivr-admin``: they work on the database file directly.

    ivr-admin consent CALL_ID                      the call's consent record
    ivr-admin summary CALL_ID [--who NAME]         read a summary (audited)
    ivr-admin export CALL_ID --out FILE [--who N]  export it as JSON for a follow-up (audited)
    ivr-admin note CALL_ID --text TEXT [--by NAME] add or replace the counselor's note
    ivr-admin withdraw CALL_ID [--by NAME]         the caller withdraws consent: delete it all
    ivr-admin purge                                delete what is past retention_days
    ivr-admin jobs                                 transcription jobs pending, running, failed
    ivr-admin retry CALL_ID                        a failed job pending again

No running controller is needed: the database is ``<state_dir>/<database>`` and the key comes
from ``<state_dir>/secrets.json`` (whoever can read that file is an administrator). ``--who`` /
``--by`` default to the login name; every read, export, note and withdrawal is recorded.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr.config import Settings
from ivr.crypto import DecryptionError, Sealer
from ivr.pbx.secrets import load_existing
from ivr.summary import jobs, records
from ivr.timezone import SEOUL

COMMANDS = ("consent", "summary", "export", "note", "withdraw", "purge", "jobs", "retry")
PARTY_KO = {"caller": "내담자", "staff": "상담사"}


def add_commands(sub: Any) -> None:
    """Add the subcommands to ivr-admin's argparse subparsers."""
    who = getpass.getuser()
    sub.add_parser("consent", help="a call's consent record").add_argument("call_id")
    p = sub.add_parser("summary", help="read a call summary (audited)")
    p.add_argument("call_id")
    p.add_argument("--who", default=who, help="who reads it (recorded; default: login name)")
    p = sub.add_parser("export", help="export a summary as JSON (audited)")
    p.add_argument("call_id")
    p.add_argument("--out", type=Path, required=True, help="file to write (mode 0600)")
    p.add_argument("--who", default=who)
    p = sub.add_parser("note", help="add or replace the counselor's wrap-up note")
    p.add_argument("call_id")
    p.add_argument("--text", required=True)
    p.add_argument("--by", default=who)
    p = sub.add_parser("withdraw", help="withdraw a caller's consent and delete the data")
    p.add_argument("call_id")
    p.add_argument("--by", default=who)
    sub.add_parser("purge", help="delete transcripts and summaries past retention_days")
    sub.add_parser("jobs", help="transcription jobs pending, running or failed")
    sub.add_parser("retry", help="a failed transcription job pending again").add_argument("call_id")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out a summary subcommand; returns the exit status."""
    try:
        conn = jobs.connect(settings.state_path(settings.database))
    except jobs.SchemaError as exc:
        print(f"ivr-admin: {exc}", file=sys.stderr)
        return 2
    try:
        secrets = load_existing(settings.secrets_path)
        out = _run(args, settings, conn, Sealer(secrets.data_key))
    except records.NotFound as exc:
        print(f"ivr-admin: 찾을 수 없습니다 — not found: {exc}", file=sys.stderr)
        return 1
    except records.NotAllowed as exc:
        print(f"ivr-admin: 동의가 없습니다 — not allowed: {exc}", file=sys.stderr)
        return 1
    except DecryptionError as exc:
        print(
            f"ivr-admin: 복호화할 수 없습니다 — cannot decrypt ({exc}); is this the "
            "installation's secrets.json?",
            file=sys.stderr,
        )
        return 1
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"ivr-admin: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print(out)
    return 0


def _run(
    args: argparse.Namespace, settings: Settings, conn: sqlite3.Connection, sealer: Sealer
) -> str:
    cmd = args.cmd
    as_json = bool(getattr(args, "json", False))
    if cmd == "consent":
        c = records.consent_record(conn, args.call_id)
        if as_json:
            return json.dumps(c.__dict__, ensure_ascii=False, indent=2)
        return render_consent(c)
    if cmd == "summary":
        summary = records.read_summary(conn, sealer, args.call_id, args.who)
        return json.dumps(summary, ensure_ascii=False, indent=2) if as_json else render(summary)
    if cmd == "export":
        text = records.export_summary(conn, sealer, args.call_id, args.who)
        write_private(args.out, text + "\n")
        return f"내보냄 exported: {args.out} (call {args.call_id}, by {args.who})"
    if cmd == "note":
        records.set_note(conn, sealer, args.call_id, args.text, args.by)
        return f"메모 저장 note saved: call {args.call_id} (by {args.by})"
    if cmd == "withdraw":
        w = records.withdraw(conn, args.call_id, args.by, settings.state_dir)
        return (
            f"동의 철회 consent withdrawn: call {w.call_id} at {when(w.withdrawn_at)} by "
            f"{w.withdrawn_by}; 삭제 deleted: {w.transcripts_deleted} transcripts, "
            f"summary {'yes' if w.summary_deleted else 'none'}, "
            f"{w.audio_files_deleted} audio files ({w.audio_bytes_deleted} bytes)"
        )
    if cmd == "purge":
        p = records.purge(conn, settings.retention_days, settings.state_dir)
        return (
            f"보존 기간 retention {settings.retention_days} days (before {when(p.cutoff)}): "
            f"{len(p.calls)} calls, {p.transcripts} transcripts, {p.summaries} summaries, "
            f"{p.audio_files} audio files ({p.audio_bytes} bytes) deleted"
        )
    if cmd == "jobs":
        pending = records.pending_jobs(conn)
        if as_json:
            return json.dumps([j.__dict__ for j in pending], ensure_ascii=False, indent=2)
        return render_jobs(pending)
    if cmd == "retry":
        if not jobs.retry(conn, args.call_id, time.time()):
            raise records.NotFound(f"no failed job for call {args.call_id}")
        return f"다시 대기 pending again: call {args.call_id}"
    raise ValueError(f"unknown command {cmd}")


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (personal data leaves the database here)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, SEOUL).strftime("%Y-%m-%d %H:%M:%S")


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60:02d}:{s % 60:02d}"


def minutes(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}분 {s % 60}초" if s >= 60 else f"{s}초"


def party(p: str) -> str:
    return f"{PARTY_KO.get(p, p)} {p}"


def render_consent(c: jobs.Consent) -> str:
    answer = {"yes": "예 yes", "no": "아니요 no", "none": "응답 없음 none"}.get(c.answer, c.answer)
    lines = [
        f"통화 call: {c.call_id}",
        f"동의 answer: {answer} (by {c.answered_by}, {when(c.at)})",
        f"안내문 prompt: {c.prompt_id} {c.prompt_version}",
        f"채널 channel: {c.channel}",
    ]
    if c.withdrawn_at is not None:
        lines.append(f"철회 withdrawn: {when(c.withdrawn_at)} by {c.withdrawn_by}")
    else:
        lines.append("철회 withdrawn: -")
    return "\n".join(lines)


def render_jobs(items: list[jobs.Job]) -> str:
    if not items:
        return "대기 중인 작업 없음 no pending, running or failed jobs"
    lines = ["통화 call | 상태 status | 시도 attempts | 갱신 updated | 오류 error"]
    for j in items:
        lines.append(
            f"{j.call_id} | {j.status} | {j.attempts} | {when(j.updated_at)} | {j.error or '-'}"
        )
    return "\n".join(lines)


def pending_line(summary: dict[str, Any]) -> str:
    """Why there is no summary: its job failed, was cancelled, or is still to come."""
    job = summary.get("job") or {}
    status, error = job.get("status"), job.get("error") or "-"
    if status == "failed":
        return (
            f"요약 실패 summary FAILED: the transcription job failed after {job.get('attempts')} "
            f"attempts: {error} (ivr-admin retry {summary.get('call_id')})"
        )
    if status == "cancelled":
        return f"요약 취소 summary cancelled: {error}"
    if status == "done":
        return "요약 없음 no summary (the job is done but stored none)"
    if status in ("pending", "running"):
        return (
            f"요약 작성 중 summary not written yet (job {status}, attempts {job.get('attempts')})"
        )
    return "요약 작성 중 summary not written yet (the worker has not finished)"


def render(summary: dict[str, Any]) -> str:
    """A summary for a person: Korean with English headings."""
    lines = [f"통화 요약 Call summary — {summary.get('call_id')}"]
    if summary.get("pending"):
        lines.append(pending_line(summary))
    else:
        lines.append(
            f"작성 created: {when(summary.get('created_at'))}   "
            f"통화 길이 duration: {minutes(summary.get('duration_seconds', 0.0))}"
        )
        shares = [
            f"{party(p)} {s['share'] * 100:.0f}% ({minutes(s['talk_seconds'])})"
            for p, s in summary.get("parties", {}).items()
        ]
        lines.append("발화 비율 talk share: " + (" · ".join(shares) or "-"))
        if summary.get("missing_parties"):
            missing = ", ".join(party(p) for p in summary["missing_parties"])
            lines.append(f"녹음 없음 missing recordings: {missing}")
        needs = summary.get("needs", {})
        if summary.get("crisis"):
            words = ", ".join(needs.get("crisis", {}).get("words", []))
            lines.append(f"!! 위기 표현 crisis words: {words}")
        lines.append("필요 needs:")
        if not needs:
            lines.append("  (찾지 못함 none found)")
        for n in needs.values():
            lines.append(f"  {n['ko']} {n['en']}: {', '.join(n['words'])}")
        mentions = summary.get("staff_mentions", {})
        if mentions:
            text = "; ".join(f"{n['ko']} ({', '.join(n['words'])})" for n in mentions.values())
            lines.append(f"상담사 언급 counselor mentioned: {text}")
        lines.append("주요 발언 key sentences:")
        if not summary.get("key_sentences"):
            lines.append("  -")
        for k in summary.get("key_sentences", []):
            lines.append(f"  [{clock(k['start'])}] {k['text']}")
    note = summary.get("note")
    if note:
        lines.append(f"상담사 메모 counselor's note ({note.get('by')}, {when(note.get('at'))}):")
        lines += [f"  {line}" for line in str(note["text"]).splitlines()]
    else:
        lines.append("상담사 메모 counselor's note: -")
    if summary.get("turns"):
        lines.append("대화 turns:")
        for t in summary["turns"]:
            lines.append(f"  [{clock(t['start'])}] {party(t['party'])}: {t['text']}")
        lines.append(
            "※ 자동 음성 인식 결과입니다 — machine transcription: check before acting on it"
        )
    return "\n".join(lines)
