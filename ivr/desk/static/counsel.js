// The counselor screen's live updates: the server sends the member's view (JSON) on every
// change. Everything is written with textContent (never as HTML).
"use strict";
(function () {
  function byId(id) { return document.getElementById(id); }
  function showContact(c) {
    var panel = byId("contact");
    panel.dataset.present = c ? "yes" : "no";
    panel.dataset.call = c ? c.call_id : "";
    byId("nocontact").hidden = !!c;
    byId("contact-body").hidden = !c;
    document.querySelectorAll(".call-id").forEach(function (el) { el.value = c ? c.call_id : ""; });
    if (!c) return;
    panel.querySelectorAll("[data-field]").forEach(function (el) {
      el.textContent = String(c[el.dataset.field]);
    });
    var list = document.createDocumentFragment();
    c.notices.forEach(function (n) {
      var li = document.createElement("li");
      var t = document.createElement("span");
      t.className = "time";
      t.textContent = n.time;
      li.appendChild(t);
      li.appendChild(document.createTextNode(" " + n.text));
      list.appendChild(li);
    });
    byId("notices").replaceChildren(list);
  }
  function showMember(m) {
    byId("me").dataset.state = m.state;
    byId("me-state").textContent = m.state_ko;
    byId("me-shift").textContent = m.on_shift;
    byId("me-registered").textContent = m.registered;
    byId("me-login").textContent = m.login;
    byId("me-reason").textContent = m.reason;
    byId("me-wrapup").textContent = m.wrapup;
  }
  function showWrapup(callId) {
    var input = byId("wrapup-call");
    byId("wrapup").hidden = !callId;
    if (callId && input.value !== callId) {
      // A new call to wrap up: an empty form (not the last call's saved answers).
      var form = byId("wrapup-form");
      form.querySelectorAll("input[type=checkbox]").forEach(function (el) { el.checked = false; });
      form.querySelectorAll("select").forEach(function (el) { el.selectedIndex = 0; });
      byId("note").value = "";
      var saved = byId("wrapup-saved");
      if (saved) saved.hidden = true;
      input.value = callId;
      byId("wrapup-label").textContent = callId;
    }
  }
  function show(view) {
    document.body.dataset.pushed = "yes";  // the first view arrived (tests, screenshots)
    var live = byId("live");
    live.dataset.state = view.connected ? "connected" : "down";
    live.textContent = view.connected ? "실시간" : "제어기 연결 없음";
    showContact(view.contact);
    showMember(view.member);
    showWrapup(view.wrapup_call);
    var watched = byId("monitored");
    watched.hidden = !view.monitored;
    watched.textContent = view.monitored || "";
  }
  window.ivrLive("/desk/events", show);  // /static/live.js: reconnects, or the sign-in page
})();
