// 知识竞赛: the countdown of one question. The server times the answer (this clock is never trusted);
// at zero the form is sent as it stands, so the page moves on without the person having to press.
(function () {
  "use strict";
  var timer = document.getElementById("contest-timer");
  var form = document.getElementById("answer-form");
  if (!timer || !form) { return; }
  var shown = document.getElementById("contest-seconds");
  var button = document.getElementById("submit-answer");
  var deadline = Date.now() + Number(timer.getAttribute("data-seconds") || "0") * 1000;
  var sent = false;

  function send() {
    if (sent) { return; }
    sent = true;
    if (button) { button.disabled = true; }
    form.submit();
  }

  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }  // one answer per question: the first counts anyway
    sent = true;
    if (button) { button.disabled = true; }
  });

  function tick() {
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    shown.textContent = String(left);
    if (left <= 10) { timer.classList.add("contest-timer-low"); }
    if (left === 0) {
      timer.textContent = timer.getAttribute("data-timeout-text");
      send();
      return;
    }
    window.setTimeout(tick, 250);
  }
  tick();
}());
