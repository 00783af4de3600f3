// The counselor's chats: offers and conversations follow by server-sent events; accepting,
// sending and ending go by fetch, without a reload. Everything a citizen typed is written
// with textContent (never as HTML).
"use strict";
(function () {
  var desk = document.getElementById("desk");
  var csrf = desk.dataset.csrf;
  var STEP = { connected: "대화 중", ended: "종료됨" };
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function post(path, fields) {
    var body = new URLSearchParams(fields || {});
    body.set("csrf", csrf);
    return fetch(path, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" },
    }).then(function (r) { return r.json(); });
  }
  function mmss(s) { return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); }
  function flagText(level) { return level ? "주의 표시 " + level + "단계" : ""; }
  function showOffers(offers) {
    var box = document.getElementById("offers");
    var out = document.createDocumentFragment();
    if (!offers.length) out.appendChild(el("p", "hint", "지금은 요청이 없습니다."));
    offers.forEach(function (o) {
      var div = el("div", "offer");
      div.dataset.chat = o.chat_id;
      div.appendChild(el("span", "", "채팅 요청 · 대기 " + mmss(o.waited) +
        (o.consent ? " · 보관 동의" : " · 보관 안 함") + " "));
      if (o.flag) div.appendChild(el("span", "flag", flagText(o.flag) + " "));
      var b = el("button", "accept", "수락");
      b.type = "button";
      b.addEventListener("click", function () { post("/desk/chats/" + o.chat_id + "/accept"); });
      div.appendChild(b);
      var d = el("button", "decline", "넘기기");
      d.type = "button";
      d.addEventListener("click", function () { post("/desk/chats/" + o.chat_id + "/decline"); });
      div.appendChild(d);
      out.appendChild(div);
    });
    box.replaceChildren(out);
  }
  function panel(c) {
    var div = el("div", "deskchat");
    div.dataset.chat = c.chat_id;
    var head = el("h3", "", "채팅 " + c.chat_id.slice(-6) + " ");
    head.appendChild(el("span", "state"));
    head.appendChild(el("span", "flag", flagText(c.flag)));
    div.appendChild(head);
    div.appendChild(el("p", "hint", c.consent ? "내용 보관 동의" : "내용 보관 안 함"));
    div.appendChild(el("ol", "lines"));
    var err = el("p", "error");
    err.setAttribute("role", "alert");
    var form = el("form", "say");
    var text = el("textarea");
    text.name = "text"; text.rows = 2; text.maxLength = 1000;
    text.setAttribute("aria-label", "메시지");
    var send = el("button", "send", "보내기");
    send.type = "submit";
    form.appendChild(text); form.appendChild(send);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      post("/desk/chats/" + c.chat_id + "/say", { text: text.value }).then(function (a) {
        err.textContent = a.ok ? "" : a.error;
        if (a.ok) text.value = "";
      });
    });
    div.appendChild(form);
    div.appendChild(err);
    var actions = el("p", "actions");
    var end = el("button", "end", "상담 종료");
    end.type = "button";
    end.addEventListener("click", function () { post("/desk/chats/" + c.chat_id + "/end"); });
    var abuse = el("button", "abuse", "폭언으로 종료");
    abuse.type = "button";
    abuse.addEventListener("click", function () {
      if (window.confirm("폭언으로 종료하고 이 사용자에게 주의 표시를 남길까요?")) {
        post("/desk/chats/" + c.chat_id + "/end", { abuse: "1" });
      }
    });
    actions.appendChild(end); actions.appendChild(abuse);
    div.appendChild(actions);
    return div;
  }
  function showChats(chats) {
    var box = document.getElementById("chats");
    var seen = {};
    chats.forEach(function (c) {
      seen[c.chat_id] = true;
      var div = box.querySelector('[data-chat="' + c.chat_id + '"]');
      if (!div) { div = panel(c); box.appendChild(div); }
      div.dataset.step = c.step;
      div.querySelector(".state").textContent = STEP[c.step] || c.step;
      var lines = document.createDocumentFragment();
      c.lines.forEach(function (ln) {
        var li = el("li", ln.sender, ln.text);
        li.dataset.seq = String(ln.seq);
        lines.appendChild(li);
      });
      var ol = div.querySelector(".lines");
      ol.replaceChildren(lines);
      ol.scrollTop = ol.scrollHeight;
      var open = c.step === "connected";
      div.querySelector("form").hidden = !open;
      div.querySelector(".actions").hidden = !open;
    });
    box.querySelectorAll(".deskchat").forEach(function (div) {
      if (!seen[div.dataset.chat]) div.remove();
    });
  }
  var source = new EventSource("/desk/chats/events");
  source.onmessage = function (ev) {
    var view = JSON.parse(ev.data);
    desk.dataset.pushed = "yes";
    document.getElementById("live").textContent = "실시간";
    showOffers(view.offers);
    showChats(view.chats);
  };
  source.onerror = function () {
    document.getElementById("live").textContent = "연결 끊김 — 다시 연결하는 중";
    if (source.readyState === EventSource.CLOSED) window.location.reload();
  };
})();
