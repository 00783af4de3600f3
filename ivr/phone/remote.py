"""Drive an ``ivr.phone.agent`` process from asyncio.

    async with await RemotePhone.start(name="citizen") as a:
        await a.call(f"sip:120@127.0.0.1:5060")
        await a.wait_for("call_state", state="CONFIRMED")

Every event the agent prints is kept in ``events`` (from process start on), so a
``wait_for`` issued after the event arrived still finds it.  Each event is handed out
by ``wait_for`` at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

REPLY_TIMEOUT = 10.0
START_TIMEOUT = 15.0
CLOSE_TIMEOUT = 5.0
STDERR_KEEP_LINES = 4000

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class PhoneError(Exception):
    """The agent reported an error, exited, or did not answer in time."""


class PhoneTimeout(PhoneError, TimeoutError):
    """An awaited event did not arrive in time."""


class RemotePhone:
    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.port = 0
        self.events: list[dict[str, Any]] = []
        self.stderr_lines: deque[str] = deque(maxlen=STDERR_KEEP_LINES)
        self._consumed: set[int] = set()
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._eof = False
        self._closed = False
        self._stdout_task = asyncio.create_task(self._read_stdout(), name=f"{name}-stdout")
        self._stderr_task = asyncio.create_task(self._read_stderr(), name=f"{name}-stderr")

    # ----------------------------------------------------------------- start
    @classmethod
    async def start(
        cls,
        *,
        bind: str = "127.0.0.1",
        name: str = "phone",
        log_level: int = 1,
        sip_port: int = 0,
        extra_args: tuple[str, ...] = (),
    ) -> RemotePhone:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.phone.agent",
            "--bind",
            bind,
            "--sip-port",
            str(sip_port),
            "--log-level",
            str(log_level),
            *extra_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        phone = cls(proc, name)
        try:
            ready = await phone.wait_for("ready", timeout=START_TIMEOUT)
        except BaseException:
            await phone.close()
            raise
        phone.port = int(ready["port"])
        return phone

    # ------------------------------------------------------------- readers
    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    break
                text = raw.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    event = json.loads(text)
                except ValueError:
                    event = {"event": "_garbage", "line": text}
                if not isinstance(event, dict):
                    event = {"event": "_garbage", "line": text}
                async with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self._eof = True
                self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while True:
            raw = await self.proc.stderr.readline()
            if not raw:
                return
            self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def diagnostics(self, last_events: int = 30, last_stderr: int = 60) -> str:
        events = "\n".join(json.dumps(e, ensure_ascii=False) for e in self.events[-last_events:])
        stderr = "\n".join(list(self.stderr_lines)[-last_stderr:])
        return (
            f"--- {self.name}: last events ---\n{events}\n"
            f"--- {self.name}: stderr tail ---\n{stderr}"
        )

    # ------------------------------------------------------------- protocol
    def _find(self, event: str, match: dict[str, Any]) -> int | None:
        for i, e in enumerate(self.events):
            if i in self._consumed or e.get("event") != event:
                continue
            if all(k in e and e[k] == v for k, v in match.items()):
                return i
        return None

    async def wait_for(
        self,
        event: str,
        timeout: float = 10,  # noqa: ASYNC109 - a per-call timeout is this API's point
        **match: Any,
    ) -> dict[str, Any]:
        """The oldest not yet consumed event named `event` whose fields equal `match`."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    while True:
                        i = self._find(event, match)
                        if i is not None:
                            self._consumed.add(i)
                            return self.events[i]
                        if self._eof:
                            raise PhoneError(
                                f"{self.name}: agent exited (rc={self.proc.returncode}) while "
                                f"waiting for {event} {match}\n{self.diagnostics()}"
                            )
                        await self._changed.wait()
        except TimeoutError:
            raise PhoneTimeout(
                f"{self.name}: no {event!r} event matching {match} within {timeout} s\n"
                f"{self.diagnostics()}"
            ) from None

    async def wait_any(self, seen: int | None = None) -> None:
        """Wait until there are more than `seen` events (default: the current count).

        Raises PhoneError once the agent has exited and nothing new arrived."""
        n = len(self.events) if seen is None else seen
        async with self._changed:
            while len(self.events) <= n:
                if self._eof:
                    raise PhoneError(f"{self.name}: agent exited\n{self.diagnostics()}")
                await self._changed.wait()

    async def _write(self, obj: dict[str, Any]) -> None:
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            raise PhoneError(f"{self.name}: agent stdin is closed")
        stdin.write((json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8"))
        try:
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as e:
            raise PhoneError(f"{self.name}: agent is gone: {e}\n{self.diagnostics()}") from e

    async def send_raw(self, line: str) -> None:
        """Write a raw line (for testing the agent's error handling)."""
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            raise PhoneError(f"{self.name}: agent stdin is closed")
        stdin.write(line.encode("utf-8") + b"\n")
        await stdin.drain()

    async def send(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send a command and wait for its ok reply; raises PhoneError on an error reply."""
        cmd_id = next(self._ids)
        await self._write({"cmd": cmd, "id": cmd_id, **fields})
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                async with self._changed:
                    while True:
                        for i, e in enumerate(self.events):
                            if (
                                i not in self._consumed
                                and e.get("id") == cmd_id
                                and e.get("event") in ("ok", "error")
                            ):
                                self._consumed.add(i)
                                if e["event"] == "error":
                                    raise PhoneError(
                                        f"{self.name}: {cmd} failed: {e.get('message')}"
                                    )
                                return e
                        if self._eof:
                            raise PhoneError(
                                f"{self.name}: agent exited during {cmd!r}\n{self.diagnostics()}"
                            )
                        await self._changed.wait()
        except TimeoutError:
            raise PhoneTimeout(
                f"{self.name}: no reply to {cmd!r} within {REPLY_TIMEOUT} s\n{self.diagnostics()}"
            ) from None

    # --------------------------------------------------------- conveniences
    async def register(
        self,
        user: str,
        password: str,
        domain: str,
        expires: int = 120,
        timeout: float = 10,  # noqa: ASYNC109 - passed on to wait_for
    ) -> dict[str, Any]:
        """Register and return the first reg_state event."""
        await self.send("register", user=user, password=password, domain=domain, expires=expires)
        return await self.wait_for("reg_state", timeout=timeout)

    async def unregister(self) -> None:
        await self.send("unregister")

    async def identity(self, user: str) -> None:
        await self.send("identity", user=user)

    async def call(self, uri: str, headers: dict[str, str] | None = None) -> None:
        if headers:
            await self.send("call", uri=uri, headers=headers)
        else:
            await self.send("call", uri=uri)

    async def answer(self, code: int = 200) -> None:
        await self.send("answer", code=code)

    async def auto_answer(self, enabled: bool = True, delay_ms: int = 0) -> None:
        await self.send("auto_answer", enabled=enabled, delay_ms=delay_ms)

    async def reject(self, code: int = 486) -> None:
        await self.send("reject", code=code)

    async def hangup(self) -> None:
        await self.send("hangup")

    async def dtmf(self, digits: str) -> None:
        await self.send("dtmf", digits=digits)

    async def play(self, wav: str | Path, loop: bool = True) -> None:
        await self.send("play", wav=str(wav), loop=loop)

    async def stop_play(self) -> None:
        await self.send("stop_play")

    async def record(self, wav: str | Path) -> None:
        await self.send("record", wav=str(wav))

    async def stop_record(self, timeout: float = 10) -> str:  # noqa: ASYNC109
        """Stop recording; returns the path once the file is closed."""
        await self.send("stop_record")
        return str((await self.wait_for("recorded", timeout=timeout))["wav"])

    # ------------------------------------------------------------- closing
    async def close(self) -> None:
        """Ask the agent to quit, wait up to 5 s, then kill it.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        proc = self.proc
        stdin = proc.stdin
        if proc.returncode is None and stdin is not None and not stdin.is_closing():
            with contextlib.suppress(OSError):
                stdin.write(b'{"cmd": "quit"}\n')
                await stdin.drain()
        if stdin is not None:
            stdin.close()
            with contextlib.suppress(OSError):
                await stdin.wait_closed()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await asyncio.gather(self._stdout_task, self._stderr_task, return_exceptions=True)

    async def __aenter__(self) -> RemotePhone:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
