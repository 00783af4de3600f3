"""Feature codes dialled on a staff phone (*51 log in, *52 log out, *53 pause, *54 unpause):
the dialplan hands the channel to Stasis with ``feature,<action>[,<digits>]``; the member
action is carried out and the phone hears a confirmation, then is hung up."""

from __future__ import annotations

import logging

from ivr.ari.client import AriError
from ivr.context import CallContext
from ivr.staff.driver import StaffDriver, StaffError
from ivr.staff.features import DENIED_PROMPT, FEATURE_PROMPTS, phone_pause_reason

log = logging.getLogger(__name__)

FEATURE_ARG = "feature"
SOUND_PREFIX = "sound:ivr120/"


class FeatureCodes:
    def __init__(self, ctx: CallContext, driver: StaffDriver) -> None:
        self.ctx = ctx
        self.driver = driver
        self.playbacks: dict[str, str] = {}  # playback id -> staff channel

    async def start(self, channel_id: str, member: str, args: tuple[str, ...]) -> None:
        action = args[0] if args else ""
        prompt = FEATURE_PROMPTS.get(action, DENIED_PROMPT)
        reason = phone_pause_reason(args[1:], self.ctx.settings.pause_reasons)
        try:
            if reason is None:
                raise StaffError(f"no pause reason number {args[1]!r}")
            await self.driver.member_action(member, action, reason)
        except StaffError as exc:
            log.info("feature code %s from %s refused: %s", action, member, exc)
            prompt = DENIED_PROMPT
        try:
            await self.ctx.ari.post(f"channels/{channel_id}/answer")
            pid = f"feat-{channel_id}"
            self.playbacks[pid] = channel_id
            await self.ctx.ari.post(
                f"channels/{channel_id}/play/{pid}", media=SOUND_PREFIX + prompt, lang="ko"
            )
        except AriError:
            log.exception("feature code %s: cannot confirm to %s", action, member)
            await self.ctx.hangup(channel_id)

    async def playback_finished(self, playback_id: str) -> bool:
        """True when the playback was a feature code's confirmation (then hung up)."""
        channel = self.playbacks.pop(playback_id, None)
        if channel is None:
            return False
        await self.ctx.hangup(channel)
        return True
