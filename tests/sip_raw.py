"""A few hand-made SIP requests over UDP from a chosen source address (127.0.0.x), for the
security tests: what a scanner or a spoofing peer sends, which no well-behaved phone would.

Over UDP a request can be lost, and Asterisk drops incoming requests on purpose while its
PJSIP task queues are overloaded (a burst of calls, a busy machine), counting on the client to
send again. So a request is retransmitted as RFC 3261 17.1.1.2 says (timer A: 0.5 s, doubling,
at most 4 s apart) until the server answers it at all; a retransmission carries the same branch,
so Asterisk takes it as the same transaction and repeats its last response."""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import time
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]


#: RFC 3261's T1 and T2: the first retransmission interval and the longest one.
T1, T2 = 0.5, 4.0


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class SipClient:
    """Blocking (run it with asyncio.to_thread): one UDP socket bound to `source`."""

    def __init__(self, source: str, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.source, self.port = self.sock.getsockname()
        self.call_id = secrets.token_hex(8)
        self.cseq = 0
        #: The request waiting for its first response, sent again until one arrives.
        self._pending: bytes | None = None
        #: The CSeq ("2 INVITE") of the last request: a late response to an earlier one (a
        #: repeated 401 for a retransmitted INVITE) is not this request's answer.
        self._cseq_awaited = ""

    def close(self) -> None:
        self.sock.close()

    def _send(
        self, method: str, uri: str, user: str, extra: str = "", body: str = "", to: str = ""
    ) -> str:
        self.cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(6)
        host = f"{self.server[0]}:{self.server[1]}"
        msg = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.source}:{self.port};rport;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{host}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <{to or uri}>\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {self.cseq} {method}\r\n"
            f"Contact: <sip:{user}@{self.source}:{self.port}>\r\n"
            f"{extra}"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        )
        self._request(msg)
        return branch

    def _request(self, msg: str) -> None:
        """Send a request that expects a response (every method but ACK)."""
        self._pending = msg.encode()
        cseq = re.search(r"^CSeq: *(.+?)\r$", msg, re.MULTILINE)
        self._cseq_awaited = cseq.group(1) if cseq else ""
        self.sock.sendto(self._pending, self.server)

    def _final(self, timeout: float) -> Response | None:
        """The first final (>= 200) response, or None when nothing final arrives in time.

        Until the first response of any kind, the pending request is sent again on timer A."""
        deadline = time.monotonic() + timeout
        interval = T1
        resend_at = time.monotonic() + interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                self._pending = None
                return None
            if self._pending is not None and now >= resend_at:
                self.sock.sendto(self._pending, self.server)
                interval = min(interval * 2, T2)
                resend_at = now + interval
            wake = deadline if self._pending is None else min(deadline, resend_at)
            self.sock.settimeout(max(wake - now, 0.001))
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            head = data.decode("utf-8", "replace").split("\r\n\r\n", 1)[0].split("\r\n")
            m = re.match(r"SIP/2.0 (\d{3})", head[0])
            if m is None:
                continue  # a request from the server (e.g. OPTIONS); not what we wait for
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if headers.get("cseq") != self._cseq_awaited:
                continue  # a repeated response to an earlier request
            self._pending = None  # answered: the server has the request
            status = int(m.group(1))
            if status >= 200:
                return Response(status, headers)

    def invite(self, to_user: str, from_user: str, timeout: float = 5.0) -> Response | None:
        uri = f"sip:{to_user}@{self.server[0]}:{self.server[1]}"
        ip = self.source
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        self._send(uri=uri, method="INVITE", user=from_user,
                   extra="Content-Type: application/sdp\r\n", body=sdp)  # fmt: skip
        return self._final(timeout)

    def register(self, user: str, password: str, timeout: float = 3.0) -> Response | None:
        """REGISTER, answering a digest challenge with `password`; the last final response."""
        uri = f"sip:{self.server[0]}:{self.server[1]}"
        aor = f"sip:{user}@{self.server[0]}:{self.server[1]}"
        self._send("REGISTER", uri, user, "Expires: 60\r\n", to=aor)
        first = self._final(timeout)
        if first is None or first.status != 401:
            return first
        chal = first.headers["www-authenticate"]
        realm = re.search(r'realm="([^"]*)"', chal)
        nonce = re.search(r'nonce="([^"]*)"', chal)
        assert realm and nonce, chal
        ha1 = _md5(f"{user}:{realm.group(1)}:{password}")
        ha2 = _md5(f"REGISTER:{uri}")
        qop = ""
        if re.search(r'qop="[^"]*auth', chal):
            cnonce = secrets.token_hex(4)
            resp = _md5(f"{ha1}:{nonce.group(1)}:00000001:{cnonce}:auth:{ha2}")
            qop = f', qop=auth, nc=00000001, cnonce="{cnonce}"'
        else:
            resp = _md5(f"{ha1}:{nonce.group(1)}:{ha2}")
        auth = (
            f'Authorization: Digest username="{user}", realm="{realm.group(1)}", '
            f'nonce="{nonce.group(1)}", uri="{uri}", response="{resp}", algorithm=MD5{qop}\r\n'
        )
        self._send("REGISTER", uri, user, "Expires: 60\r\n" + auth, to=aor)
        return self._final(timeout)


class StaffSip(SipClient):
    """An INVITE as a staff phone sends it: answered digest challenge (401/407), the call hung
    up at once (ACK + BYE) when it is answered, every final response acknowledged."""

    def _send_branch(
        self, method: str, uri: str, user: str, branch: str, *, to: str, cseq: int
    ) -> None:
        host = f"{self.server[0]}:{self.server[1]}"
        msg = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.source}:{self.port};rport;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{host}>;tag={self.from_tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        if method == "ACK":  # ACK has no response, so it is never sent again
            self.sock.sendto(msg.encode(), self.server)
        else:
            self._request(msg)

    def call(self, to_user: str, user: str, password: str, timeout: float = 5.0) -> Response | None:
        """INVITE sip:to_user@server as `user`; the final response (None: none in time)."""
        self.from_tag = secrets.token_hex(4)
        uri = f"sip:{to_user}@{self.server[0]}:{self.server[1]}"
        ip = self.source
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        auth = ""
        for _ in range(2):
            branch = self._invite(uri, user, auth, sdp)
            final = self._final(timeout)
            if final is None:
                return None
            to = final.headers.get("to", f"<{uri}>")
            if final.status < 300:
                self._finish(uri, user, final, to)
                return final
            # The ACK of a non-2xx final response is in the INVITE's transaction (its branch).
            self._send_branch("ACK", uri, user, branch, to=to, cseq=self.cseq)
            if final.status not in (401, 407) or auth:
                return final
            header = "www-authenticate" if final.status == 401 else "proxy-authenticate"
            auth = self._digest(final.headers[header], "INVITE", uri, user, password, final.status)
        return None

    def _invite(self, uri: str, user: str, auth: str, sdp: str) -> str:
        self.cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(6)
        host = f"{self.server[0]}:{self.server[1]}"
        msg = (
            f"INVITE {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.source}:{self.port};rport;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{host}>;tag={self.from_tag}\r\n"
            f"To: <{uri}>\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {self.cseq} INVITE\r\n"
            f"Contact: <sip:{user}@{self.source}:{self.port}>\r\n"
            f"{auth}"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp.encode())}\r\n\r\n{sdp}"
        )
        self._request(msg)
        return branch

    @staticmethod
    def _digest(chal: str, method: str, uri: str, user: str, password: str, status: int) -> str:
        realm = re.search(r'realm="([^"]*)"', chal)
        nonce = re.search(r'nonce="([^"]*)"', chal)
        assert realm and nonce, chal
        ha1 = _md5(f"{user}:{realm.group(1)}:{password}")
        ha2 = _md5(f"{method}:{uri}")
        qop = ""
        if re.search(r'qop="[^"]*auth', chal):
            cnonce = secrets.token_hex(4)
            resp = _md5(f"{ha1}:{nonce.group(1)}:00000001:{cnonce}:auth:{ha2}")
            qop = f', qop=auth, nc=00000001, cnonce="{cnonce}"'
        else:
            resp = _md5(f"{ha1}:{nonce.group(1)}:{ha2}")
        name = "Authorization" if status == 401 else "Proxy-Authorization"
        return (
            f'{name}: Digest username="{user}", realm="{realm.group(1)}", '
            f'nonce="{nonce.group(1)}", uri="{uri}", response="{resp}", algorithm=MD5{qop}\r\n'
        )

    def _finish(self, uri: str, user: str, final: Response, to: str) -> None:
        """ACK the answer (a new transaction) and hang up with BYE."""
        target = re.search(r"<([^>]+)>", final.headers.get("contact", "")) or None
        req_uri = target.group(1) if target else uri
        new = "z9hG4bK" + secrets.token_hex(6)
        self._send_branch("ACK", req_uri, user, new, to=to, cseq=self.cseq)
        self.cseq += 1
        new = "z9hG4bK" + secrets.token_hex(6)
        self._send_branch("BYE", req_uri, user, new, to=to, cseq=self.cseq)
        self._final(2.0)  # the BYE's 200 (or nothing: Asterisk hangs up on its own anyway)
