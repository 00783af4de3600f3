"""Generated secrets: ARI password, SIP passwords, the key that hashes callers' numbers.

They are created on first start with `secrets.token_urlsafe`, kept in ``<state_dir>/secrets.json``
(mode 0600) and never written to the repository. Deleting the file rotates everything.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Secrets:
    ari_password: str
    caller_hash_key: str
    sip_passwords: dict[str, str]
    #: AES-256-GCM key for personal data at rest (ivr.crypto).
    data_key: str = ""
    #: Token for the administrators' HTTP API (ivr-admin reads it from this file).
    admin_token: str = ""


class SecretsError(RuntimeError):
    """The secrets file exists but cannot be used; it is never overwritten then."""


def _refuse(path: Path, problem: str) -> SecretsError:
    return SecretsError(
        f"secrets file {path} {problem}. Refusing to start: it holds the keys for sealed data "
        "(callback numbers, summaries) and the accounts, and is never overwritten. Restore it "
        "from a backup; only if nothing sealed must be kept, move it away to generate new "
        "secrets. (비밀 파일이 손상되었습니다: 덮어쓰지 않고 시작을 멈춥니다)"
    )


def load_or_create(path: Path, endpoints: Iterable[str]) -> Secrets:
    """Load the secrets file, adding any missing entry, and return it.

    A file that exists but is unreadable, not a JSON object, or has an entry of the wrong type
    raises :class:`SecretsError` and is left as it is.
    """
    data: dict[str, object] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise _refuse(path, f"cannot be read ({exc.strerror})") from None
        except ValueError as exc:
            raise _refuse(path, f"is not valid JSON ({exc})") from None
        if not isinstance(loaded, dict):
            raise _refuse(path, "is not a JSON object")
        data = loaded
        wrong = sorted(
            k
            for k in ("ari_password", "caller_hash_key", "admin_token", "data_key")
            if k in data and not isinstance(data[k], str)
        )
        if "sip_passwords" in data and not isinstance(data["sip_passwords"], dict):
            wrong.append("sip_passwords")
        if wrong:
            raise _refuse(path, f"has entries of the wrong type: {', '.join(wrong)}")
    changed = False
    for key in ("ari_password", "caller_hash_key", "admin_token"):
        if not isinstance(data.get(key), str):
            data[key] = secrets.token_urlsafe(24)
            changed = True
    if not isinstance(data.get("data_key"), str):
        data["data_key"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        changed = True
    sip = data.get("sip_passwords")
    if not isinstance(sip, dict):
        sip = {}
        changed = True
    for ep in endpoints:
        if not isinstance(sip.get(ep), str):
            sip[ep] = secrets.token_urlsafe(12)
            changed = True
    data["sip_passwords"] = sip
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return Secrets(
        ari_password=str(data["ari_password"]),
        caller_hash_key=str(data["caller_hash_key"]),
        sip_passwords={str(k): str(v) for k, v in sip.items()},
        data_key=str(data["data_key"]),
        admin_token=str(data["admin_token"]),
    )


def load_existing(path: Path) -> Secrets:
    """Read the secrets file without creating or changing anything (for admin tools)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Secrets(
            ari_password=str(data["ari_password"]),
            caller_hash_key=str(data["caller_hash_key"]),
            sip_passwords={str(k): str(v) for k, v in data["sip_passwords"].items()},
            data_key=str(data["data_key"]),
            admin_token=str(data["admin_token"]),
        )
    except FileNotFoundError:
        raise SecretsError(
            f"no secrets file at {path}: is state_dir right? (비밀 파일이 없습니다)"
        ) from None
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise SecretsError(f"secrets file {path} is unreadable: {exc}") from None
