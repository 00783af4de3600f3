"""`ivr-run`: start the PBX and the controller in the foreground until Ctrl-C or SIGTERM
(or SIGUSR2: stop for an update, leaving the calls to the next run; ivr/stopping.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ivr.app import Options, build_app
from ivr.config import ConfigError, load_settings
from ivr.flow.menu import MenuError
from ivr.followup.agencies import AgencyError
from ivr.keys import HANDOVER
from ivr.lease.keeper import LeaseKeeper
from ivr.lease.standby import StandbyError, wait_as_standby
from ivr.logs import setup_logging
from ivr.pbx.install import PbxUnavailable
from ivr.pbx.lock import InstanceBusy
from ivr.pbx.runner import PbxStartError
from ivr.pbx.secrets import SecretsError
from ivr.prompts.catalog import CatalogError, MissingPromptError
from ivr.security.files import secure_state_dir
from ivr.staff.roster import RosterError
from ivr.stopping import HANDOVER_SIGNAL, leave, serve
from ivr.store_schema import SchemaTooNew

log = logging.getLogger("ivr")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ivr-run",
        description="Run the 외로움안녕120 IVR: a local Asterisk and the ARI controller.",
    )
    p.add_argument("--config", type=Path, help="TOML settings file (also IVR120_CONFIG)")
    p.add_argument("--sip-port", type=int, help="SIP UDP port (default 5060)")
    p.add_argument("--http-port", type=int, help="Asterisk HTTP/ARI port (default 8088)")
    p.add_argument("--status-port", type=int, help="status page port (default 8089)")
    p.add_argument("--state-dir", type=Path, help="runtime state directory (default ./var)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument(
        "--external-pbx",
        action="store_true",
        help="connect to an Asterisk that is already running instead of starting one",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(
            args.config,
            overrides={
                "sip_port": args.sip_port,
                "http_port": args.http_port,
                "status_port": args.status_port,
                "state_dir": args.state_dir,
                "log_level": args.log_level,
            },
        )
    except ConfigError as exc:
        print(f"ivr-run: {exc}", file=sys.stderr)
        return 2
    secure_state_dir(settings.state_dir)  # owner-only files from here on (umask 077)
    setup_logging(settings)
    # SIGUSR2 (the hand-over) means something only while serving (ivr/stopping.py); before
    # (a standby waiting, the start) and after (asyncio's close restores the default, which
    # would end the process mid-way) it is ignored, never the end of the process.
    signal.signal(HANDOVER_SIGNAL, signal.SIG_IGN)
    keeper: LeaseKeeper | None = None
    handed_over = False
    if settings.ha_enabled:  # active/standby (docs/ha.md): first hold the lease
        try:
            keeper = wait_as_standby(settings)
        except (StandbyError, SchemaTooNew) as exc:
            print(f"ivr-run: {exc}", file=sys.stderr)
            return 1
        if keeper is None:
            return 0
    try:
        options = Options(
            manage_pbx=not args.external_pbx,
            run_summary_worker=settings.summary_worker_managed,
            serve_desk=True,
            fence=keeper.fence if keeper else None,
        )
        app = build_app(settings, options)
        log.info(
            "starting: SIP udp/%d, ARI %s, status http://127.0.0.1:%d/status",
            settings.sip_port,
            settings.ari_url,
            settings.status_port,
        )
        try:
            asyncio.run(serve(app, settings.status_port, settings.shutdown_grace))
        finally:
            signal.signal(HANDOVER_SIGNAL, signal.SIG_IGN)
            handed_over = app[HANDOVER].is_set()
    except (
        AgencyError,
        MenuError,
        CatalogError,
        MissingPromptError,
        PbxUnavailable,
        PbxStartError,
        RosterError,
        SecretsError,
        InstanceBusy,
        SchemaTooNew,
    ) as exc:
        print(f"ivr-run: {exc}", file=sys.stderr)
        return 1
    finally:
        if keeper is not None:  # a clean stop: the standby takes over at its next look
            keeper.stop(release=True)
        if handed_over:  # whatever happened after: never a normal exit (ivr.stopping.leave)
            log.warning("handed over: Asterisk and its calls are left for the next run")
            leave(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
