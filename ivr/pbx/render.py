"""Render the Asterisk configuration from dialplan/templates with the settings.

The configuration is never hand-edited per machine: every run renders it again from the
templates, the settings and the generated secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from ivr.config import Settings
from ivr.paths import DIALPLAN_TEMPLATES
from ivr.pbx.secrets import Secrets
from ivr.security.bans import acl_config

#: The file of banned SIP sources that pjsip.conf includes (rewritten by ivr.security).
BANS_FILE = "pjsip-bans.conf"


@dataclass(frozen=True)
class InstanceDirs:
    """An Asterisk instance's directories, as Asterisk sees them."""

    base: str

    @property
    def etc(self) -> str:
        return f"{self.base}/etc"

    @property
    def lib(self) -> str:
        return f"{self.base}/lib"

    @property
    def data(self) -> str:
        return f"{self.base}/data"

    @property
    def spool(self) -> str:
        return f"{self.base}/spool"

    @property
    def run(self) -> str:
        return f"{self.base}/run"

    @property
    def log(self) -> str:
        return f"{self.base}/log"

    def all(self) -> tuple[str, ...]:
        return (self.etc, self.lib, self.data, self.spool, self.run, self.log)


@dataclass(frozen=True)
class StaffEndpoint:
    name: str
    password: str
    context: str = "staff"


def render_config(
    settings: Settings, secrets: Secrets, dirs: InstanceDirs, moddir: str
) -> dict[str, str]:
    """Return {file name: text} for every template."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(DIALPLAN_TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    staff = [StaffEndpoint(name, secrets.sip_passwords[name]) for name in settings.staff_endpoints]
    ctx = {
        "settings": settings,
        "secrets": secrets,
        "dirs": dirs,
        "moddir": moddir,
        "staff": staff,
        "bans_file": BANS_FILE,
    }
    out: dict[str, str] = {}
    for tpl in sorted(Path(DIALPLAN_TEMPLATES).glob("*.j2")):
        out[tpl.name.removesuffix(".j2")] = env.get_template(tpl.name).render(ctx)
    out[BANS_FILE] = acl_config(())  # nobody is banned at start
    return out
