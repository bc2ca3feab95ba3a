/* Polls a video's processing state and updates the label; reloads the page when it settles. */
(function () {
  "use strict";
  var box = document.getElementById("upload-status");
  if (!box || box.dataset.state === "ready" || box.dataset.state === "failed") return;
  var label = document.getElementById("upload-state");
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        label.textContent = s.label + (s.status === "processing" ? " " + s.progress + "%" : "");
        if (s.status === "ready" || s.status === "failed") { window.location.reload(); } else { setTimeout(poll, 3000); }
      })
      .catch(function () { setTimeout(poll, 10000); });
  }
  setTimeout(poll, 2000);
})();
