"""`ivr-admin`: supervisors' and administrators' commands against the running controller.

    ivr-admin status                      calls in progress and queues
    ivr-admin counselors                  roster: on shift, phone registered, logged in, paused
                                          (each since when), busy, wrap-up
    ivr-admin login|logout ID             log a counselor in or out
    ivr-admin pause ID --reason TEXT      pause a counselor (a break, training, ...)
    ivr-admin unpause ID
    ivr-admin calls [--limit N]           recent call records
    ivr-admin flags                       active abuse flags (hashed callers)
    ivr-admin lift-flag CALLER_HASH       lift a caller's abuse flag
    ivr-admin callbacks                   open callback requests
    ivr-admin reload-roster               read the roster file again (no restart)
    ivr-admin reload                      apply menu, roster and prompt changes (no restart)

Follow-up calls (ivr.followup.admin_commands; through the API):

    ivr-admin followups [--team --type --status --due]   the follow-up worklist
    ivr-admin followup show|assign|reschedule|close ID    one task
    ivr-admin followup pause [--team T] [--reason R] | resume [--team T] | dialling
    ivr-admin companion enrol CALL --companion ID --every 7d --at "화 15:00"
    ivr-admin companion stop SERIES|CALL                  stop a companion series
    ivr-admin companions | agencies | referrals           lists
    ivr-admin referral add CALL AGENCY [--note] | referral set ID --status S

Each capability brings its own commands (`add_commands`/`run`/`render` in
ivr/<capability>/admin_commands.py): flow (status, calls), staff, flags, callbacks, summary,
followup.
This module is the shell. The API commands talk to the controller's API on loopback
with the admin token from state_dir/secrets.json (whoever can read that file is an
administrator). Output is Korean with English headings; `--json` (before or after the
subcommand) prints the raw answer for scripts.

Consented call summaries (ivr.summary.admin_commands; on the database file, no controller
needed; reads, exports, notes and withdrawals are audited):

    ivr-admin consent CALL_ID                      the call's consent record
    ivr-admin summary CALL_ID [--who NAME]         read a call summary
    ivr-admin export CALL_ID --out FILE [--who N]  export it as JSON for a follow-up worker
    ivr-admin note CALL_ID --text TEXT [--by NAME] add or replace the counselor's wrap-up note
    ivr-admin withdraw CALL_ID [--by NAME]         withdraw consent: delete transcripts+summary
    ivr-admin purge                                delete what is older than retention_days
    ivr-admin jobs                                 transcription jobs pending/running/failed
    ivr-admin retry CALL_ID                        a failed transcription job pending again

The web desk (ivr.web.admin_commands; on the database file):

    ivr-admin desk-password MEMBER [--by NAME]     set a staff member's desk password

Active/standby controllers (ivr.lease.admin_commands; on the database file):

    ivr-admin lease                                which controller is active (docs/ha.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ivr.callbacks import admin_commands as callbacks_commands
from ivr.config import ConfigError, Settings, load_settings
from ivr.flags import admin_commands as flags_commands
from ivr.flow import admin_commands as flow_commands
from ivr.followup import admin_commands as followup_commands
from ivr.lease import admin_commands as lease_commands
from ivr.staff import admin_commands as staff_commands
from ivr.summary import admin_commands as summary_commands
from ivr.web import admin_commands as desk_commands

#: The capabilities' command sets (each: COMMANDS, add_commands, run; API ones also render).
PLUGINS: tuple[Any, ...] = (
    flow_commands,
    staff_commands,
    flags_commands,
    callbacks_commands,
    summary_commands,
    followup_commands,
    desk_commands,
    lease_commands,
)


def render(cmd: str, data: Any) -> str:
    for plugin in PLUGINS:
        if cmd in plugin.COMMANDS and hasattr(plugin, "render"):
            return str(plugin.render(cmd, data))
    return json.dumps(data, ensure_ascii=False, indent=2)


def _shared_options(p: argparse.ArgumentParser, default: Any) -> None:
    """Options that work before and after the subcommand. Subcommands get them with a
    suppressed default, so that `--json status` is not undone by the subparser."""
    p.add_argument(
        "--config", type=Path, default=default, help="TOML settings file (also IVR120_CONFIG)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=False if default is None else default,
        help="print the raw JSON answer",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ivr-admin", description=__doc__.splitlines()[0])
    _shared_options(p, None)
    sub = p.add_subparsers(dest="cmd", required=True)
    for plugin in PLUGINS:
        plugin.add_commands(sub)
    for subparser in sub.choices.values():
        _shared_options(subparser, argparse.SUPPRESS)
    return p.parse_args(argv)


def run(args: argparse.Namespace, settings: Settings) -> int:
    for plugin in PLUGINS:
        if args.cmd in plugin.COMMANDS:
            return int(plugin.run(args, settings))
    raise AssertionError(f"no capability has the command {args.cmd!r}")  # argparse refuses it


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"ivr-admin: {exc}", file=sys.stderr)
        return 2
    return run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
