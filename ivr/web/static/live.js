// A room's live view (ivr/web/streams.py) as server-sent events, shared by the wallboard and
// the counselor screen: ivrLive(url, show) calls show(view) for every view the desk sends.
// A stream closed for good (the desk answered with something else than a stream) is one of:
// the session ended (signed out, expired, no longer of the role) — reloading shows the sign-in
// page — or too many live screens of this member open (429). The page asks the stream's URL
// once more with fetch, which sees the status an EventSource hides: 429 means the cap, so it
// says so and tries again later instead of reloading (a reload would open the page and the
// stream again at once, a loop). Asking the stream (not the page) reads nothing and audits
// nothing; the desk does not count a stream request as the member's activity.
(function () {
  "use strict";
  var RETRY_MS = 10000;  // ivr.web.streams.RETRY_AFTER
  var TOO_MANY = "실시간 화면이 너무 많이 열려 있습니다 — 사용하지 않는 창이나 탭을 닫아 주세요";

  function down(text) {
    var live = document.getElementById("live");
    live.dataset.state = "down";
    live.textContent = text;
  }

  window.ivrLive = function (url, show) {
    function open() {
      var source = new EventSource(url);
      source.onmessage = function (ev) { show(JSON.parse(ev.data)); };
      source.onerror = function () {
        down("연결 끊김 — 다시 연결하는 중");
        if (source.readyState !== EventSource.CLOSED) return;  // the browser reconnects
        var ask = new AbortController();
        fetch(url, { redirect: "manual", cache: "no-store", signal: ask.signal }).then(
          function (resp) {
            ask.abort();  // a stream that opened gives its slot back at the desk's next tick
            if (resp.status === 429) {
              down(TOO_MANY);
              window.setTimeout(open, RETRY_MS);
            } else if (resp.ok) {
              window.setTimeout(open, 1000);  // a slot was free after all: after it is given back
            } else {
              window.location.reload();  // the session ended: the sign-in page
            }
          },
          function () { window.setTimeout(open, RETRY_MS); }  // the desk is not answering
        );
      };
    }
    open();
  };
})();
