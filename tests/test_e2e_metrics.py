"""End to end: /metrics while a real caller (pjsua2, through the real Asterisk) waits for a
counselor nobody can be, parsed with the Prometheus client's own parser: a queue of one with a
wait that grows, then an empty queue once the caller hung up."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ivr.app import SECRETS
from ivr.flow import call as flow
from tests.conftest import Hotline, PhoneFactory
from tests.test_e2e_calls import dial_120

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
QUEUE = (("queue", "loneliness"),)


async def scrape(hotline: Hotline) -> Samples:
    headers = {"Authorization": f"Bearer {hotline.app[SECRETS].admin_token}"}
    url = f"http://127.0.0.1:{hotline.settings.status_port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        assert r.status == 200
        text = await r.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


async def wait_metric(hotline: Hotline, key: tuple[str, tuple[tuple[str, str], ...]], want: float,
                      timeout: float = 10) -> Samples:  # fmt: skip
    got: Samples = {}
    try:
        async with asyncio.timeout(timeout):
            while (got := await scrape(hotline)).get(key) != want:
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{key} never became {want}: {got.get(key)}") from None
    return got


async def test_metrics_show_the_waiting_caller_then_an_empty_queue(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    hotline = clean_hotline
    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    await hotline.press_5(caller, call_id)
    await hotline.wait_state(call_id, flow.State.WAITING)

    got = await wait_metric(hotline, ("ivr120_queue_length", QUEUE), 1)
    first = got["ivr120_queue_longest_wait_seconds", QUEUE]
    assert first > 0
    assert got["ivr120_calls", (("journey", "inbound"), ("stage", "queue"))] == 1
    assert got["ivr120_calls_active", ()] == 1
    # Nobody registered: every counselor is counted, none idle or busy.
    counted = {k[1]: v for k, v in got.items() if k[0] == "ivr120_counselors"}
    assert counted[(("state", "busy"), ("team", "counselors"))] == 0
    assert got["ivr120_ari_reconnects_total", ()] >= 0
    assert got["ivr120_controller_inputs_waiting", ()] >= 0  # scraped between inputs
    assert got["ivr120_controller_lanes_busy", ()] >= 0
    assert ("ivr120_followups_due", (("team", "counselors"),)) in got
    # The wait grows while the caller waits (measured, not guessed: the next scrape that
    # shows a longer one).
    async with asyncio.timeout(10):
        while (await scrape(hotline))["ivr120_queue_longest_wait_seconds", QUEUE] <= first:
            await asyncio.sleep(0.1)

    await caller.hangup()
    await hotline.wait_row(call_id)
    await hotline.wait_clean()
    got = await wait_metric(hotline, ("ivr120_queue_length", QUEUE), 0)
    assert got["ivr120_queue_longest_wait_seconds", QUEUE] == 0
    assert not any(k[0] == "ivr120_calls" and v for k, v in got.items())
