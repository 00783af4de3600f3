"""The lease's decisions (ivr/lease/model.py), pure: the stored row, who I am, my token, the
time passed in."""

from __future__ import annotations

import pytest

from ivr.lease.model import Decision, Lease, LeaseParams, decide, renewed, taken_over

P = LeaseParams(lease_seconds=2.0, renew_seconds=0.5)
A = Lease("a", 3, expires_at=10.0)


def test_a_standby_takes_a_missing_lease() -> None:
    assert decide(None, "b", None, 0.0) is Decision.TAKE_OVER


def test_a_standby_waits_while_the_lease_runs() -> None:
    assert decide(A, "b", None, 9.99) is Decision.STAND_BY


def test_a_standby_takes_an_expired_lease() -> None:
    assert decide(A, "b", None, 10.0) is Decision.TAKE_OVER


def test_the_holder_renews() -> None:
    assert decide(A, "a", 3, 9.0) is Decision.RENEW


def test_the_holder_renews_past_expiry_when_no_one_took_over() -> None:
    assert decide(A, "a", 3, 15.0) is Decision.RENEW


def test_the_holder_lost_it_to_a_newer_token() -> None:
    assert decide(Lease("b", 4, 20.0), "a", 3, 15.0) is Decision.LOST


def test_the_holder_lost_it_when_the_row_is_gone() -> None:
    assert decide(None, "a", 3, 15.0) is Decision.LOST


def test_a_same_token_with_another_holder_is_lost() -> None:
    assert decide(Lease("b", 3, 20.0), "a", 3, 15.0) is Decision.LOST


def test_a_take_over_increments_the_token() -> None:
    assert taken_over(A, "b", 12.0, P) == Lease("b", 4, 14.0)


def test_the_first_lease_has_token_1() -> None:
    assert taken_over(None, "a", 0.0, P) == Lease("a", 1, 2.0)


def test_a_renewal_keeps_the_token() -> None:
    assert renewed(A, 9.5, P) == Lease("a", 3, 11.5)


def test_a_lease_must_fit_two_renewals() -> None:
    with pytest.raises(ValueError, match="twice"):
        LeaseParams(lease_seconds=0.9, renew_seconds=0.5)
