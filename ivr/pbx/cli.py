"""`ivr-pbx`: administrator commands for the PBX side.

ivr-pbx ensure          find a system Asterisk 20+ or build/reuse the cached Debian root
ivr-pbx credentials     print the SIP accounts for counselors' and agents' softphones
ivr-pbx render DIR      write the Asterisk configuration that would run, for review (and, with
                        --moddir, for the Asterisk container to run: docker/asterisk)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ivr.config import ConfigError, Settings, load_settings
from ivr.pbx.install import PbxUnavailable, locate
from ivr.pbx.render import InstanceDirs, render_config
from ivr.pbx.secrets import Secrets, load_or_create


def _secrets(settings: Settings) -> Secrets:
    return load_or_create(settings.secrets_path, settings.staff_endpoints)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ivr-pbx", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, help="TOML settings file (also IVR120_CONFIG)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ensure", help="find or build the Asterisk to run")
    sub.add_parser("credentials", help="print SIP accounts (secret: handle with care)")
    r = sub.add_parser("render", help="write the rendered configuration into DIR")
    r.add_argument("dir", type=Path)
    r.add_argument(
        "--moddir",
        default="<moddir>",
        help="Asterisk's module directory to write in (the Asterisk image passes its own)",
    )
    args = p.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"ivr-pbx: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "ensure":
        try:
            inst = locate(settings.pbx_mode, settings.pbx_cache_dir)
        except PbxUnavailable as exc:
            print(f"ivr-pbx: {exc}", file=sys.stderr)
            return 1
        where = f"root {inst.root}" if inst.root else inst.binary
        print(f"{inst.version} ({inst.kind}: {where})")
        return 0
    secrets = _secrets(settings)
    if args.cmd == "credentials":
        host = "<this host's address>"
        print(f"# SIP accounts — registrar/domain: {host}:{settings.sip_port} (UDP)")
        print("# 상담사 소프트폰 계정 — 비밀번호는 외부에 공유하지 마세요.")
        for name in settings.staff_endpoints:
            print(f"{name}\t{secrets.sip_passwords[name]}")
        return 0
    inst_dirs = InstanceDirs(f"/srv/ivr120/{settings.instance}")
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_config(settings, secrets, inst_dirs, args.moddir).items():
        (args.dir / name).write_text(text, encoding="utf-8")
    print(f"wrote {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
