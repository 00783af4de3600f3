"""The pure machines' configurations, built from the settings: the one place that maps a
setting to a machine's parameter.

The configuration dataclasses (FlowConfig, RingGroupConfig, BanParams, FollowupConfig) have no
defaults of their own for what the settings own, so a default lives in one place only:
ivr.config.Settings.
"""

from __future__ import annotations

from ivr.config import Settings
from ivr.flow.call import FlowConfig
from ivr.flow.menu import Menu
from ivr.followup.model import FollowupConfig, minutes
from ivr.security.bans import BanParams
from ivr.staff.ringgroup import RingGroupConfig


def flow_config(settings: Settings, menu: Menu) -> FlowConfig:
    """A caller's journey through `menu` (a reload builds a new one for new calls)."""
    return FlowConfig(
        menu=menu,
        input_timeout=settings.menu_input_timeout,
        max_failures=settings.menu_max_failures,
        reassurance_interval=settings.hold_reassurance_interval,
        callback_offer_after=settings.callback_offer_after,
        both_silence_notify=settings.both_silence_notify,
        caller_silence_notify=settings.caller_silence_notify,
        consent_timeout=settings.consent_timeout,
        max_wait=settings.max_wait,
    )


def ring_group_config(settings: Settings) -> RingGroupConfig:
    """Every queue's ring group (distribution, wrap-up, no-answer rules)."""
    return RingGroupConfig(
        strategy=settings.ring_strategy,
        wrapup_seconds=settings.wrapup_seconds,
        abuse_wrapup_seconds=settings.abuse_wrapup_seconds,
        long_call_seconds=settings.long_call_seconds,
        long_call_wrapup_seconds=settings.long_call_wrapup_seconds,
        no_answer_cooldown_seconds=settings.no_answer_cooldown_seconds,
        max_consecutive_no_answers=settings.max_consecutive_no_answers,
        chats_per_member=settings.chats_per_counselor,
        chat_during_call=settings.chat_during_call,
    )


def ban_params(settings: Settings) -> BanParams:
    """SIP brute-force bans; the carrier's addresses are never banned."""
    return BanParams(
        failures=settings.auth_ban_failures,
        window=settings.auth_ban_window,
        ban_seconds=settings.auth_ban_seconds,
        exempt=(*settings.carrier_addresses, *settings.auth_ban_exempt),
    )


def followup_config(settings: Settings) -> FollowupConfig:
    """The follow-up planner's and journey's rules."""
    return FollowupConfig(
        backoff=tuple(float(b) for b in settings.followup_backoff),
        max_attempts=settings.followup_max_attempts,
        calling_start=minutes(settings.followup_calling_start),
        calling_end=minutes(settings.followup_calling_end),
        lock_seconds=settings.followup_lock_seconds,
        companion_grace=settings.companion_grace_seconds,
        monitoring_after=settings.monitoring_after_days * 86400.0,
        reached_min_talk=settings.followup_reached_min_talk,
    )
