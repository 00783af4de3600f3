// The wallboard's live updates: the server sends the whole board (JSON) on every change.
// Everything is written with textContent (never as HTML).
"use strict";
(function () {
  function cell(tr, cls, text) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
  }
  function show(board) {
    document.body.dataset.pushed = "yes";  // the first board arrived (screenshots wait for it)
    document.getElementById("waiting").textContent = String(board.waiting);
    document.getElementById("longest").textContent = board.longest;
    document.getElementById("chats-waiting").textContent = String(board.chats_waiting);
    document.getElementById("chats-longest").textContent = board.chats_longest;
    var live = document.getElementById("live");
    live.dataset.state = board.connected ? "connected" : "down";
    live.textContent = board.connected ? "실시간" : "제어기 연결 없음";
    var body = document.querySelector("#members tbody");
    var rows = document.createDocumentFragment();
    board.members.forEach(function (m) {
      var tr = document.createElement("tr");
      tr.dataset.member = m.member;
      tr.dataset.state = m.state;
      cell(tr, "", m.member);
      cell(tr, "state", m.state_ko);
      cell(tr, "time", m.time);
      cell(tr, "chats", String(m.chats));
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
    if (board.chat_figures) {
      document.querySelectorAll("[data-chat-figure]").forEach(function (el) {
        el.textContent = String(board.chat_figures[el.dataset.chatFigure]);
      });
    }
    if (board.figures) {
      document.querySelectorAll("[data-figure]").forEach(function (el) {
        el.textContent = String(board.figures[el.dataset.figure]);
      });
    }
  }
  var source = new EventSource("/wallboard/events");
  source.onmessage = function (ev) { show(JSON.parse(ev.data)); };
  source.onerror = function () {
    var live = document.getElementById("live");
    live.dataset.state = "down";
    live.textContent = "연결 끊김 — 다시 연결하는 중";
    // Closed for good: the desk answered with a page, not a stream (signed out, or the
    // session expired). Reloading shows the sign-in page.
    if (source.readyState === EventSource.CLOSED) window.location.reload();
  };
})();
