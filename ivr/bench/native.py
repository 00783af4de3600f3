"""The native baseline: the same journey written directly in Asterisk dialplan and app_queue —
what a FreePBX user would run instead of the product.

It is an instance of the project's own Asterisk (same binary, same modules plus app_read and
app_queue, same pjsip endpoints, RTP and music settings, the same prompt files), rendered from
the product's templates and then given its own extensions.conf and queues.conf. The product's
templates are not changed: only this instance's copies are replaced.

    answer -> Read(greeting + menu options, 1 digit) -- 5 -->
    Read(loneliness intro + consent explanation + question, 1 digit) -->
    Queue(loneliness): music on hold, the reassurance prompt every hold_reassurance_interval

The queue has no members (nobody answers), as in the product's benchmark run; every caller who
joins it is an ENTERQUEUE line in the instance's queue_log.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ivr.config import Settings
from ivr.flow.call import CONSENT_PROMPTS
from ivr.flow.menu import Menu
from ivr.pbx.install import AsteriskInstall
from ivr.pbx.runner import Pbx
from ivr.pbx.secrets import Secrets

#: Modules the native journey needs beyond the product's (Read and Queue).
EXTRA_MODULES = ("app_read.so", "app_queue.so")
QUEUE = "loneliness"


def _files(prompts: tuple[str, ...]) -> str:
    return "&".join(f"ivr120/{p}" for p in prompts)


def extensions_conf(settings: Settings, menu: Menu) -> str:
    """The journey in dialplan: menu, key 5, intro and consent question, the queue."""
    option = next(o for o in menu.options if menu.queues[o.queue].consent)
    queue = menu.queues[option.queue]
    menu_prompts = (*menu.greeting, *menu.option_prompts)
    intro = (queue.intro, *CONSENT_PROMPTS)
    timeout = f"{settings.menu_input_timeout:g}"
    return f"""; ivr120 benchmark: the native baseline (ivr/bench/native.py), not the product.
[general]
static = yes
writeprotect = yes
autofallthrough = yes

[public]
exten => 120,1,NoOp(native baseline)
 same => n,Set(CHANNEL(language)=ko)
 same => n,Answer()
 same => n,Set(TRIES=0)
 same => n(menu),Read(CHOICE,{_files(menu_prompts)},1,,1,{timeout})
 same => n,GotoIf($["${{CHOICE}}" = "{option.digit}"]?line)
 same => n,Set(TRIES=$[${{TRIES}} + 1])
 same => n,GotoIf($[${{TRIES}} < {settings.menu_max_failures}]?menu)
 same => n,Playback(ivr120/goodbye)
 same => n,Hangup()
 same => n(line),Read(CONSENT,{_files(intro)},1,,1,{settings.consent_timeout:g})
 same => n,Queue({QUEUE},,,,{settings.max_wait:g})
 same => n,Hangup()
"""


def queues_conf(settings: Settings, menu: Menu) -> str:
    queue = menu.queues[QUEUE]
    return f"""; ivr120 benchmark: the native baseline's queue (no members: nobody answers).
[general]
persistentmembers = no

[{QUEUE}]
musicclass = default
strategy = ringall
joinempty = yes
leavewhenempty = no
announce-frequency = 0
periodic-announce = ivr120/{queue.reassurance}
periodic-announce-frequency = {settings.hold_reassurance_interval:g}
timeout = {settings.ring_timeout:g}
"""


class NativePbx(Pbx):
    """The project's Asterisk with the native journey instead of the Stasis application."""

    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        install: AsteriskInstall,
        menu: Menu,
        sounds_from: Path,
    ) -> None:
        super().__init__(settings, secrets, install)
        self.menu = menu
        self.sounds_from = sounds_from

    @property
    def queue_log(self) -> Path:
        return self.host(self.dirs.log) / "queue_log"

    def prepare(self) -> None:
        super().prepare()
        etc = self.host(self.dirs.etc)
        (etc / "extensions.conf").write_text(extensions_conf(self.settings, self.menu))
        (etc / "queues.conf").write_text(queues_conf(self.settings, self.menu))
        modules = etc / "modules.conf"
        extra = "".join(f"load = {m}\n" for m in EXTRA_MODULES)
        modules.write_text(modules.read_text() + "\n; native baseline\n" + extra)
        # The same prompt files and music the product played (its instance built them).
        shutil.copytree(self.sounds_from, self.sounds_dir, dirs_exist_ok=True)
        self._chown()

    def entered_queue(self) -> int:
        """Callers who joined the queue so far (ENTERQUEUE lines of the queue_log)."""
        try:
            text = self.queue_log.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return sum(1 for line in text.splitlines() if "|ENTERQUEUE|" in line)
