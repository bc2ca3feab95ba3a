// 科学素质自测: the countdown on the question page. The server keeps the deadline and refuses answers
// after it; this only shows the time left (from the server's figure), says so at 5 and 1 minutes, and when
// time is up disables the 确定 button and asks the learner to hand in.
(function () {
  "use strict";
  var timer = document.getElementById("assessment-timer");
  if (!timer) { return; }
  var clock = document.getElementById("assessment-clock");
  var announce = document.getElementById("assessment-announce");
  var timeUp = document.getElementById("assessment-timeup");
  var left = parseInt(timer.getAttribute("data-seconds-left"), 10) || 0;
  var ends = Date.now() + left * 1000;
  var said = {};

  function show() {
    var seconds = Math.max(0, Math.round((ends - Date.now()) / 1000));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    clock.textContent = m + ":" + (s < 10 ? "0" : "") + s;
    if (seconds <= 60) { timer.classList.add("low"); }
    [300, 60].forEach(function (mark) {
      if (seconds <= mark && seconds > 0 && !said[mark]) {
        said[mark] = true;
        announce.textContent = timer.textContent.trim();
      }
    });
    if (seconds === 0) {
      timeUp.hidden = false;
      document.querySelectorAll("[data-answer-button]").forEach(function (b) { b.disabled = true; });
      return;
    }
    window.setTimeout(show, 1000);
  }
  show();
})();
