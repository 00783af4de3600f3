// The citizen's chat page: the conversation follows by server-sent events; messages are sent
// without a reload. Everything anyone typed is written with textContent (never as HTML).
"use strict";
(function () {
  // The guide's buttons are plain forms: a second press while the first is on its way (a
  // double click, an impatient tap on a slow phone) is dropped, so the desk gets one choice.
  // Not by disabling the buttons: a button disabled in its own submit leaves its name=value
  // out of the form. If the page has not gone after 10 s (no network), pressing works again.
  var guides = document.querySelectorAll("form.buttons");
  guides.forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (f.dataset.sent) { ev.preventDefault(); return; }
      f.dataset.sent = "yes";
      setTimeout(function () { delete f.dataset.sent; }, 10000);
    });
  });
  window.addEventListener("pageshow", function (ev) {  // back to this page from the cache
    if (ev.persisted) guides.forEach(function (f) { delete f.dataset.sent; });
  });
})();
(function () {
  var root = document.getElementById("chat");
  var CHAT_STEPS = ["waiting", "connected", "ended"];
  if (!root || CHAT_STEPS.indexOf(root.dataset.step) < 0) return;  // the guide: plain forms
  var STATUS = { waiting: "상담사 연결을 기다리는 중", connected: "상담사와 대화 중", ended: "종료된 채팅" };
  function show(view) {
    if (CHAT_STEPS.indexOf(view.step) < 0) { window.location.reload(); return; }
    root.dataset.step = view.step;
    root.dataset.pushed = "yes";
    var status = STATUS[view.step];
    if (view.step === "waiting" && view.position) status += " (대기 " + view.position + "번째)";
    document.getElementById("status").textContent = status;
    var list = document.createDocumentFragment();
    view.lines.forEach(function (ln) {
      var li = document.createElement("li");
      li.className = ln.sender;
      li.dataset.seq = String(ln.seq);
      li.textContent = ln.text;
      list.appendChild(li);
    });
    var lines = document.getElementById("lines");
    lines.replaceChildren(list);
    lines.scrollTop = lines.scrollHeight;
    var ended = view.step === "ended";
    document.getElementById("say").hidden = ended;
    document.getElementById("leave-form").hidden = ended;
    document.getElementById("new-form").hidden = !ended;
    document.getElementById("withdraw-form").hidden = !view.kept;
    document.getElementById("callback-box").hidden = !view.callback;
  }
  var form = document.getElementById("say");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = document.getElementById("text");
    var refusal = document.getElementById("refusal");
    fetch("/chat/say", {
      method: "POST",
      headers: { "Accept": "application/json" },
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    }).then(function (r) { return r.json(); }).then(function (answer) {
      refusal.textContent = answer.ok ? "" : answer.error;
      if (answer.ok) text.value = "";
    }).catch(function () { refusal.textContent = "보내지 못했습니다. 다시 시도해 주세요."; });
  });
  var source = new EventSource("/chat/events");
  source.onmessage = function (ev) { show(JSON.parse(ev.data)); };
  source.onerror = function () {
    // Closed for good: the server refused the stream (too many open from this connection);
    // a dropped connection is retried by the browser itself.
    if (source.readyState === EventSource.CLOSED) {
      document.getElementById("refusal").textContent = root.dataset.streamRefused;
    }
  };
})();
