/* The venue's QR screen (templates/activities/qr.html): when the shown code's 30-second slot ends, ask
   the server for the next code and put it in place, with the attendance count and the window's state. */
(function () {
  "use strict";
  var box = document.getElementById("qr-box");
  if (!box) return;
  var state = document.getElementById("qr-state");
  var attended = document.getElementById("qr-attended");

  function schedule(seconds) {
    setTimeout(refresh, Math.max(1, Number(seconds) || 30) * 1000);
  }

  function refresh() {
    fetch(box.dataset.refreshUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (d) {
        box.innerHTML = d.svg;  /* markup made by the server from its own URL (segno): no script, no style */
        state.textContent = d.state;
        state.classList.toggle("closed", !d.open);
        attended.textContent = d.attended;
        schedule(d.refresh_in);
      })
      .catch(function () { schedule(5); });  /* a network blip: try again soon, the old code still works a slot */
  }

  schedule(box.dataset.refreshIn);
})();
