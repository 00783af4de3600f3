"""`ivr-report`: the operator's report for a period, from the product's database (read only).

    ivr-report --from 2026-11-01 --to 2026-11-30 [--line loneliness] --out report.html
               [--format html|pdf] [--csv DIR] [--lang ko|en] [--db PATH]
               [--roster PATH | --no-roster]
    ivr-report simulate --from … --to … --roster candidate.toml [--scale …]  (what-if;
               ivr.report.simulate_cli)

Korean by default. Exit status 0 when written, 2 when the report cannot be made (the reason
printed: no database, a schema too old, no Korean font, a bad roster, no Chromium for a PDF).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ivr.report import channels, chats, erlang, erlang_a, figures, workload
from ivr.report import followups as follow
from ivr.report.figures import Table
from ivr.report.reader import (
    ReportError,
    connect,
    read_calls,
    read_flag_levels,
    read_silence_actions,
    read_tasks,
)
from ivr.report.rows import CallRow, Period, TaskRow
from ivr.report.satisfaction import SurveyAnswer, read_answers, satisfaction
from ivr.report.synthetic import is_synthetic
from ivr.report.text import TEXT

log = logging.getLogger(__name__)


def build_tables(
    calls: Sequence[CallRow],
    tasks: Sequence[TaskRow],
    period: Period,
    rostered: dict[tuple[int, int], float] | None,
    silence_actions: Sequence[str] = (),
    flag_levels: Sequence[int] = (),
    more: follow.Rows | None = None,
    survey: Sequence[SurveyAnswer] = (),
    work: workload.Rows | None = None,
    chat_rows: Sequence[chats.ChatRow] = (),
) -> list[Table]:
    """Every figure's table, in the report's order."""
    staffing = erlang.staffing(calls, period, rostered)
    return [
        figures.contacts_per_day(channels.contacts(calls, chats.contacts(chat_rows)), period),
        figures.arrivals_heatmap(calls),
        figures.answer_rates(calls),
        figures.abandonment_by_wait(calls),
        erlang_a.abandonment_by_wait_hour(calls),
        figures.waits(calls),
        figures.handle_times(calls),
        figures.repeat_callers(calls),
        figures.funnel(calls),
        figures.endings(calls),
        figures.followup_endings(calls),
        figures.followups(tasks),
        *follow.tables(tasks, more or follow.Rows()),
        figures.silence_and_abuse(calls, silence_actions, flag_levels),
        chats.chat_table(chat_rows),
        workload.workload(calls, work or workload.Rows(), period, chats.per_member(chat_rows)),
        staffing,
        erlang_a.staffing_a(staffing, calls),
        satisfaction(survey),
    ]


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _rostered(path: Path, period: Period) -> dict[tuple[int, int], float]:
    from ivr.staff.roster import RosterError, load_roster, on_shift_ids

    try:
        roster = load_roster(path)
    except (OSError, RosterError) as exc:
        raise ReportError(f"roster {path}: {exc}") from None
    return erlang.roster_staffing(lambda when: len(on_shift_ids(roster, when)), period)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if list(argv[:1]) == ["simulate"]:
        from ivr.report import simulate_cli

        return simulate_cli.main(argv[1:])
    parser = argparse.ArgumentParser(prog="ivr-report", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="first", type=_date, required=True)
    parser.add_argument("--to", dest="last", type=_date, required=True)
    parser.add_argument("--line", help="only the calls of this line (queue name)")
    parser.add_argument("--out", type=Path, required=True, help="the file to write")
    parser.add_argument(
        "--format", choices=("html", "pdf"), default="html", help="pdf: printed by Chromium"
    )
    parser.add_argument("--csv", type=Path, help="a directory for the tables behind the figures")
    parser.add_argument("--lang", choices=sorted(TEXT), default="ko")
    parser.add_argument("--db", type=Path, help="the database (default: from the settings)")
    roster = parser.add_mutually_exclusive_group()
    roster.add_argument("--roster", type=Path, help="the roster (default: from the settings)")
    roster.add_argument("--no-roster", action="store_true", help="staffing without the roster")
    parser.add_argument("--agencies", type=Path, help="the agency catalog (default: settings)")
    args = parser.parse_args(argv)
    try:
        period = Period(args.first, args.last)
        return _run(args, period)
    except (ReportError, ValueError) as exc:
        print(f"ivr-report: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, period: Period) -> int:
    from ivr.report.render import html_report, use_cjk_font, write_csv

    use_cjk_font()  # before anything is read: no report with empty boxes for Korean
    db_path, roster_path = args.db, args.roster
    agencies_path = args.agencies
    if db_path is None or (roster_path is None and not args.no_roster):
        from ivr.config import load_settings
        from ivr.paths import project_file

        settings = load_settings()
        db_path = db_path or settings.state_path(settings.database)
        roster_path = roster_path or settings.roster_file
        agencies_path = agencies_path or project_file(settings.agencies_file)
    t0 = time.monotonic()
    db = connect(db_path)
    try:
        calls = read_calls(db, period, args.line)
        tasks = read_tasks(db, period)
        silences, flags = read_silence_actions(db, period), read_flag_levels(db, period)
        more = follow.read(db, period, agencies_path)
        survey = read_answers(db, period, args.line)
        work = workload.read(db, period)
        chat_rows = chats.read_chats(db, period, args.line)
    finally:
        db.close()
    rostered = None if args.no_roster else _rostered(roster_path, period)
    tables = build_tables(
        calls, tasks, period, rostered, silences, flags, more, survey, work, chat_rows
    )
    t = TEXT[args.lang]
    header = [
        (t["period"], f"{period.first} – {period.last}"),
        (t["line"], args.line or t["all_lines"]),
        (t["generated"], dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    page = html_report(tables, t, header, synthetic=any(is_synthetic(c) for c in calls))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "pdf":
        from ivr.report.pdf import html_to_pdf

        html_to_pdf(page, args.out)
    else:
        args.out.write_text(page, encoding="utf-8")
    os.chmod(args.out, 0o600)
    if args.csv is not None:
        for path in write_csv(tables, args.csv):
            os.chmod(path, 0o600)
    took = time.monotonic() - t0
    print(f"ivr-report: {len(calls)} calls, {len(chat_rows)} chats, {args.out} in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
