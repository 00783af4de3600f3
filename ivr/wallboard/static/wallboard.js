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
  // The row an empty table shows.
  function noneRow(span, text) {
    var tr = document.createElement("tr");
    tr.className = "none";
    var td = document.createElement("td");
    td.colSpan = span;
    td.textContent = text;
    tr.appendChild(td);
    return tr;
  }
  var MODES = [["listen", "듣기"], ["whisper", "귓속말"], ["barge", "끼어들기"]];
  function hidden(form, name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  // The calls a supervisor may monitor, each with its three buttons (forms with the CSRF token).
  function showCalls(calls) {
    var monitor = document.getElementById("monitor");
    if (!monitor) return; // a wall screen's board: nothing to monitor
    var csrf = monitor.dataset.csrf;
    fillRows("#live-calls tbody", calls, function (tr, c) {
      tr.dataset.call = c.call_id;
      cell(tr, "", c.member);
      var td = document.createElement("td");
      MODES.forEach(function (m) {
        var form = document.createElement("form");
        form.method = "post";
        form.action = "/wallboard/monitor";
        form.className = "inline";
        hidden(form, "csrf", csrf);
        hidden(form, "call_id", c.call_id);
        var button = document.createElement("button");
        button.type = "submit";
        button.name = "mode";
        button.value = m[0];
        button.textContent = m[1];
        form.appendChild(button);
        td.appendChild(form);
      });
      tr.appendChild(td);
    }, [2, "감독할 수 있는 통화가 없습니다."]);
  }
  // Replace a table's rows: `fill(tr, item)` writes each; `empty` ([colspan, text]) if none.
  function fillRows(selector, items, fill, empty) {
    var rows = document.createDocumentFragment();
    items.forEach(function (item) {
      var tr = document.createElement("tr");
      fill(tr, item);
      rows.appendChild(tr);
    });
    if (!items.length && empty) rows.appendChild(noneRow(empty[0], empty[1]));
    document.querySelector(selector).replaceChildren(rows);
  }
  // Silence alerts and abuse endings of the last hour, the newest first.
  function alertRow(tr, a) {
    tr.dataset.kind = a.kind;
    tr.dataset.call = a.call_id;
    ["time", "text", "line", "member", "call"].forEach(function (k) { cell(tr, k, a[k]); });
  }
  function memberRow(tr, m) {
    tr.dataset.member = m.member;
    tr.dataset.state = m.state;
    if (m.wellbeing) tr.dataset.wellbeing = "over";
    cell(tr, "", m.member);
    cell(tr, "state", m.state_ko);
    cell(tr, "time", m.time);
    cell(tr, "chats", String(m.chats));
    cell(tr, "wellbeing", m.wellbeing || "");
  }
  function show(board) {
    document.getElementById("waiting").textContent = String(board.waiting);
    document.getElementById("longest").textContent = board.longest;
    document.getElementById("chats-waiting").textContent = String(board.chats_waiting);
    document.getElementById("chats-longest").textContent = board.chats_longest;
    var live = document.getElementById("live");
    live.dataset.state = board.connected ? "connected" : "down";
    live.textContent = board.connected ? "실시간" : "제어기 연결 없음";
    fillRows("#members tbody", board.members, memberRow, null);
    fillRows("#alerts tbody", board.alerts || [], alertRow, [5, "최근 1시간 동안 알림이 없습니다."]);
    if (board.chat_figures) {
      document.querySelectorAll("[data-chat-figure]").forEach(function (el) {
        el.textContent = String(board.chat_figures[el.dataset.chatFigure]);
      });
    }
    showCalls(board.calls || []);
    if (board.figures) {
      document.querySelectorAll("[data-figure]").forEach(function (el) {
        el.textContent = String(board.figures[el.dataset.figure]);
      });
    }
    document.body.dataset.pushed = "yes";  // a pushed board is shown (screenshots wait for it)
  }
  window.ivrLive("/wallboard/events", show);  // /static/live.js: reconnects, or the sign-in page
})();
