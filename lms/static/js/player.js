/* Lesson player: reports what was really played, in heartbeats, to the server (the judge).
   - counts only while the video plays and the page is visible;
   - sends the played intervals every 10 s and on pause/end/leave;
   - keeps unsent heartbeats in localStorage and sends them when the network returns. */
(function () {
  "use strict";
  var video = document.getElementById("lesson-video");
  if (!video) return;
  var url = video.dataset.heartbeatUrl;
  var token = document.querySelector('meta[name="csrf-token"]').content;
  var queueKey = "kepu-heartbeats:" + url;
  var intervals = [];          // played since the last send: [[start, end], ...]
  var segmentStart = null;     // where the current continuous play began
  var started = false;
  var statusEl = document.getElementById("watch-status");
  var meter = document.getElementById("watch-meter");

  var lastTime = 0;            // last position seen while playing (at "seeking", currentTime is already the target)
  function closeSegment(end) {
    if (segmentStart !== null) {
      end = end === undefined ? video.currentTime : end;
      if (end > segmentStart) intervals.push([segmentStart, end]);
      segmentStart = null;
    }
  }
  function openSegment() {
    if (!video.paused && !video.ended && document.visibilityState === "visible") segmentStart = video.currentTime;
  }

  function loadQueue() { try { return JSON.parse(localStorage.getItem(queueKey) || "[]"); } catch (e) { return []; } }
  function saveQueue(q) { try { localStorage.setItem(queueKey, JSON.stringify(q.slice(-50))); } catch (e) {} }

  function show(result) {
    var pct = Math.round(result.watched_share * 100);
    if (meter) { meter.setAttribute("aria-valuenow", pct); meter.firstElementChild.style.width = pct + "%"; }
    if (statusEl) statusEl.textContent = result.video_done ? "✔ 视频已看完" : "已看 " + pct + "%";
  }

  var sending = false;
  function flush() {
    if (sending) return;
    var queue = loadQueue();
    if (!queue.length) return;
    sending = true;
    var body = queue[0];
    fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token }, body: JSON.stringify(body) })
      .then(function (r) {
        if (r.status >= 500) throw new Error("server");
        var rest = loadQueue().slice(1);   // 2xx or 4xx: this heartbeat is settled either way
        saveQueue(rest);
        return r.ok ? r.json() : null;
      })
      .then(function (result) { sending = false; if (result) show(result); if (loadQueue().length) flush(); })
      .catch(function () { sending = false; });   // offline: keep it, retry later
  }

  function send(force) {
    var running = segmentStart !== null;
    closeSegment();
    if (intervals.length || force) {
      var queue = loadQueue();
      queue.push({ intervals: intervals, position: video.currentTime, rate: video.playbackRate });
      saveQueue(queue);
      intervals = [];
    }
    if (running) openSegment();
    flush();
  }

  video.addEventListener("loadedmetadata", function () {
    var resume = parseFloat(video.dataset.resumeAt || "0");
    if (resume > 1 && resume < video.duration - 2) video.currentTime = resume;
  });
  video.addEventListener("play", function () { if (!started) { started = true; } send(true); openSegment(); });
  video.addEventListener("pause", function () { send(false); });
  video.addEventListener("ended", function () { send(false); });
  video.addEventListener("timeupdate", function () { if (!video.seeking) lastTime = video.currentTime; });
  video.addEventListener("seeking", function () { closeSegment(lastTime); });
  video.addEventListener("seeked", function () { openSegment(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { send(false); } else { openSegment(); }
  });
  window.addEventListener("online", flush);
  window.addEventListener("pagehide", function () { send(false); });
  setInterval(function () { if (segmentStart !== null) send(false); }, 10000);
  flush();
})();
