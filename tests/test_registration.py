"""The registration tracker (ivr.staff.registration): who is registered, since when."""

from __future__ import annotations

from ivr.staff.registration import Presence, Registration, Registrations, Transition


def tracker() -> Registrations:
    regs = Registrations(["c1", "c2"])
    regs.seed({"c1"}, 10.0)
    return regs


def test_nothing_is_known_before_the_first_seed() -> None:
    assert Registrations(["c1"]).get("c1") == Registration("c1", False, None)


def test_seed_dates_states_by_when_they_were_seen() -> None:
    assert tracker().get("c1") == Registration("c1", True, 10.0, observed=True)


def test_seed_lists_the_others_offline() -> None:
    assert tracker().get("c2") == Registration("c2", False, 10.0, observed=True)


def test_going_online_is_a_transition() -> None:
    assert tracker().update("c2", "online", 20.0) == Transition("c2", True, 20.0)


def test_a_transition_dates_the_registration() -> None:
    regs = tracker()
    regs.update("c1", "offline", 20.0)
    assert regs.get("c1") == Registration("c1", False, 20.0)


def test_an_unchanged_state_is_no_transition() -> None:
    assert tracker().update("c1", "online", 20.0) is None


def test_an_unknown_endpoint_is_ignored() -> None:
    assert tracker().update("zz", "online", 20.0) is None


def test_a_reseed_keeps_the_date_of_an_unchanged_state() -> None:
    regs = tracker()
    regs.update("c2", "online", 20.0)
    regs.seed({"c1", "c2"}, 30.0)
    assert regs.get("c2") == Registration("c2", True, 20.0)


def test_online_lists_the_registered() -> None:
    assert tracker().online() == frozenset({"c1"})


def test_presence_from_the_endpoint_list_online_and_on_a_channel() -> None:
    endpoints = [
        {"resource": "c1", "state": "online", "channel_ids": []},
        {"resource": "c2", "state": "online", "channel_ids": ["1796134546.12"]},  # on *51
        {"resource": "c3", "state": "offline", "channel_ids": []},
        {"resource": "c4", "state": "online"},  # no list: no channel
    ]
    seen = Presence.of(endpoints)
    assert seen.online == {"c1", "c2", "c4"}
    assert seen.on_a_channel == {"c2"}
