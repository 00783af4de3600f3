"""Limits on what an anonymous visitor of /chat can make the desk do (ivr.chat.http).

A chat identity is free (a new cookie per visit), so limits that matter are per client address
and in total (ivr.web.limits): chats started and callback requests in a sliding window
(`Window`), the citizens' event streams held open at once (`Slots`).
"""

from __future__ import annotations

from ivr.web.limits import Window

#: A chat's callback requests (전화로 연락받기): per client address, and from everybody.
CALLBACKS_PER_ADDRESS = 3
CALLBACKS_TOTAL = 60
CALLBACK_WINDOW = 3600.0


def callback_window() -> Window:
    return Window(CALLBACKS_PER_ADDRESS, CALLBACKS_TOTAL, CALLBACK_WINDOW)
