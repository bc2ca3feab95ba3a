/* An export job's page: polls its status, moves the progress bar, reloads when it is done or failed
   (the page then shows the download link or the reason). Without JS the 刷新 link does the same. */
(function () {
  "use strict";
  var box = document.getElementById("export-job");
  if (!box || (box.dataset.state !== "queued" && box.dataset.state !== "running")) return;
  var bar = document.getElementById("export-job-progress");
  var state = document.getElementById("export-job-state");
  var count = document.getElementById("export-job-count");
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.status !== "queued" && s.status !== "running") { window.location.reload(); return; }
        state.textContent = s.label;
        if (s.total) { bar.max = s.total; }
        if (s.status === "running") { bar.value = s.done; }
        count.textContent = count.textContent.replace(/\d+ \/ \d+/, s.done + " / " + (s.total || 0));
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 10000); });
  }
  setTimeout(poll, 1000);
})();
