/* 请老师帮忙 (issue 15), no outside service: plain requests every few seconds.
   - On a class tablet (#help-box): pressing the button or 取消 posts in place (the page, a playing
     video, stays as it is) and swaps 请老师帮忙 ↔ 老师马上来; while a request is open the tablet asks
     every 4 s whether a teacher has cleared it, and returns to the button when so.
   - On the teacher's class page (#help-requests): the open requests, fetched every 4 s, with 已处理.
   Without JavaScript both work as plain forms and page loads. */
(function () {
  "use strict";
  if (window.__kepuHelp) return;          // base.html and a page may both load it
  window.__kepuHelp = true;
  var POLL_MS = 4000;
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var token = tokenMeta ? tokenMeta.content : "";

  function post(form) {
    return fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }

  // --- the tablet -----------------------------------------------------------------------------------
  var box = document.getElementById("help-box");
  if (box && window.fetch && window.FormData) {
    var raiseForm = document.getElementById("help-raise-form");
    var openBox = document.getElementById("help-open");
    var cancelForm = document.getElementById("help-cancel-form");
    var timer = null;
    var show = function (open) {
      raiseForm.hidden = open;
      openBox.hidden = !open;
      clearTimeout(timer);
      if (open) timer = setTimeout(check, POLL_MS);
    };
    var check = function () {
      fetch(box.dataset.stateUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) {
          // signed out for being idle: show the roster (and its notice) rather than a page nobody owns
          if (r.status === 401) { window.location.href = box.dataset.rosterUrl; throw new Error("signed out"); }
          if (!r.ok) throw new Error(r.status);
          return r.json();
        })
        .then(function (state) { show(state.open); })
        .catch(function () { timer = setTimeout(check, POLL_MS * 2); });
    };
    var wire = function (form, after) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        post(form).then(function (state) { show(state.open); after(); })
          .catch(function () { form.submit(); });   // the plain post does the same
      });
    };
    wire(raiseForm, function () { document.getElementById("help-cancel").focus(); });
    wire(cancelForm, function () { document.getElementById("help-raise").focus(); });
    if (!openBox.hidden) timer = setTimeout(check, POLL_MS);
  }

  // --- the teacher's class page ------------------------------------------------------------------
  var panel = document.getElementById("help-requests");
  if (panel && window.fetch) {
    var list = document.getElementById("help-list");
    var none = document.getElementById("help-none");
    var clearLabel = panel.dataset.clearLabel, placeLabel = panel.dataset.placeLabel;
    var render = function (requests) {
      while (list.firstChild) list.removeChild(list.firstChild);
      requests.forEach(function (item) {
        var li = document.createElement("li");
        li.className = "help-item";
        li.id = "help-" + item.id;
        var text = document.createElement("p");
        var name = document.createElement("strong");
        name.className = "help-name";
        var flag = document.createElement("span");
        flag.className = "help-flag";
        flag.textContent = panel.dataset.flagLabel;
        name.appendChild(flag);
        name.appendChild(document.createTextNode(" " + item.name));
        text.appendChild(name);
        text.appendChild(document.createTextNode(" · " + placeLabel + item.place + " · " + item.tablet + " · "));
        var ago = document.createElement("span");
        ago.className = "help-ago";
        ago.textContent = item.ago;
        text.appendChild(ago);
        var form = document.createElement("form");
        form.method = "post";
        form.className = "inline";
        form.action = panel.dataset.clearUrl.replace("/0/clear", "/" + item.id + "/clear");
        var csrf = document.createElement("input");
        csrf.type = "hidden"; csrf.name = "csrf_token"; csrf.value = token;
        var button = document.createElement("button");
        button.type = "submit";
        button.className = "button primary help-clear";
        button.textContent = "✔ " + clearLabel;
        form.appendChild(csrf);
        form.appendChild(button);
        li.appendChild(text);
        li.appendChild(form);
        list.appendChild(li);
      });
      none.hidden = requests.length > 0;
    };
    var load = function () {
      fetch(panel.dataset.url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) { render(data.requests); })
        .catch(function () {})
        .then(function () { setTimeout(load, POLL_MS); });
    };
    list.addEventListener("submit", function (event) {
      var form = event.target;
      event.preventDefault();
      post(form).then(function (data) { render(data.requests); }).catch(function () { form.submit(); });
    });
    setTimeout(load, POLL_MS);
  }
})();
