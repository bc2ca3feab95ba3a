/* Lesson player: reports what was really played, in heartbeats, to the server (the judge).
   - counts only while the video plays and the page is visible;
   - sends the played intervals every 10 s and on pause/end/leave, each with this player's token
     and a sequence number; the play heartbeat takes the account's study lease, and a 409 answer
     means another window or device took it: this player pauses and offers to take over again;
   - keeps unsent heartbeats in localStorage and sends them, in order, when the network returns;
   - strict courses: no seeking past the furthest point watched, no rate above 1.0×, the video
     pauses when the page is hidden, and after a long time without interaction an inline
     "还在学习吗？" banner gives the learner time to answer before the video pauses;
   - 清晰度 switch between renditions, 省流量 remembered per user, resume where the learner left. */
(function () {
  "use strict";
  var video = document.getElementById("lesson-video");
  if (!video) return;
  var d = video.dataset;
  var url = d.heartbeatUrl;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var strict = d.strict === "true";
  var queueKey = "kepu-heartbeats:" + url;
  var player = makeToken();     // this page's player: the lease is held per player
  var seq = 0;
  var intervals = [];           // played since the last send: [[start, end], ...]
  var segmentStart = null;      // where the current continuous play began
  var lastTime = 0;             // last position seen while playing (at "seeking", currentTime is already the target)
  var furthest = parseFloat(d.furthest || "0") || 0;
  var leaseLost = false;
  var statusEl = document.getElementById("watch-status");
  var meter = document.getElementById("watch-meter");
  var messageEl = document.getElementById("player-message");
  var leaseBanner = document.getElementById("lease-banner");
  var idlePrompt = document.getElementById("idle-prompt");

  function makeToken() {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function say(text) {
    if (!messageEl || !text) return;
    messageEl.textContent = text;
    clearTimeout(say.timer);
    say.timer = setTimeout(function () { messageEl.textContent = ""; }, 8000);
  }

  // ---- counting -------------------------------------------------------------------------------
  function counting() {
    return !video.paused && !video.ended && !video.seeking && document.visibilityState === "visible" && !leaseLost;
  }
  function closeSegment(end) {
    if (segmentStart !== null) {
      end = end === undefined ? video.currentTime : end;
      if (end > segmentStart) intervals.push([segmentStart, end]);
      segmentStart = null;
    }
  }
  function openSegment() {
    if (counting()) { segmentStart = video.currentTime; lastTime = segmentStart; }
  }

  // ---- heartbeats and the offline queue -------------------------------------------------------
  function loadQueue() { try { return JSON.parse(localStorage.getItem(queueKey) || "[]"); } catch (e) { return []; } }
  function saveQueue(q) { try { localStorage.setItem(queueKey, JSON.stringify(q.slice(-200))); } catch (e) {} }
  function settle(body) {       // drop one heartbeat (by player and sequence) once the server has judged it
    saveQueue(loadQueue().filter(function (h) { return !(h.player === body.player && h.seq === body.seq); }));
  }

  function show(result) {
    var pct = Math.round(result.watched_share * 100);
    if (meter) { meter.value = pct; meter.textContent = pct + "%"; }
    if (statusEl) statusEl.textContent = result.video_done ? (d.msgDone || "✔") : (d.msgWatched || "%s%").replace("%s", pct);
  }

  var sending = false;
  function flush() {
    if (sending) return;
    var queue = loadQueue();
    if (!queue.length) return;
    sending = true;
    var body = queue[0];
    fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(body) })
      .then(function (r) {
        if (r.status >= 500) throw new Error("server");
        if (r.status === 409) {   // that player lost the lease: none of its queued heartbeats will count
          saveQueue(loadQueue().filter(function (h) { return h.player !== body.player; }));
          if (body.player === player) onLeaseLost();
          return null;
        }
        settle(body);             // 2xx or other 4xx: this heartbeat is settled either way
        return r.ok ? r.json() : null;
      })
      .then(function (result) { sending = false; if (result) show(result); if (loadQueue().length) flush(); })
      .catch(function () { sending = false; });   // offline: keep it, retry later
  }

  function send(start) {
    var running = segmentStart !== null;
    closeSegment();
    if (intervals.length || start) {
      var queue = loadQueue();
      seq += 1;
      queue.push({ player: player, seq: seq, t: Date.now(), start: !!start, intervals: intervals,
                   position: video.currentTime, rate: video.playbackRate });
      saveQueue(queue);
      intervals = [];
    }
    if (running) openSegment();
    flush();
  }

  // ---- one accruing player per account -------------------------------------------------------
  function onLeaseLost() {
    leaseLost = true;
    segmentStart = null;
    intervals = [];
    if (!video.paused) video.pause();
    if (leaseBanner) leaseBanner.hidden = false;
  }
  if (leaseBanner) leaseBanner.querySelector("button").addEventListener("click", function () {
    leaseBanner.hidden = true;
    leaseLost = false;
    var p = video.play();   // the play heartbeat takes the lease back
    if (p && p.catch) p.catch(function () {});
  });

  // ---- strict courses --------------------------------------------------------------------------
  var idleSeconds = parseFloat(d.idleSeconds || "600");
  var answerSeconds = parseFloat(d.idleAnswerSeconds || "20");
  var lastActivity = Date.now();
  var promptShownAt = null;
  var idleStopped = false;
  function activity() { lastActivity = Date.now(); }
  function hidePrompt() {
    promptShownAt = null;
    if (idlePrompt) idlePrompt.hidden = true;
  }
  if (strict) {
    ["pointerdown", "pointermove", "keydown", "touchstart", "wheel", "scroll"].forEach(function (name) {
      document.addEventListener(name, activity, { capture: true, passive: true });
    });
    video.addEventListener("ratechange", function () {
      if (video.playbackRate > 1) { video.playbackRate = 1; say(d.msgRate); }
      if (video.defaultPlaybackRate > 1) video.defaultPlaybackRate = 1;
    });
    if (idlePrompt) idlePrompt.querySelector("button").addEventListener("click", function () {
      var resume = idleStopped;
      idleStopped = false;
      hidePrompt();
      activity();
      if (resume) { var p = video.play(); if (p && p.catch) p.catch(function () {}); }
    });
    setInterval(function () {
      var now = Date.now();
      if (promptShownAt === null) {
        if (!video.paused && !video.ended && now - lastActivity >= idleSeconds * 1000) {
          promptShownAt = now;
          if (idlePrompt) { idlePrompt.hidden = false; idlePrompt.querySelector("button").focus(); }
        }
      } else if (!idleStopped && now - promptShownAt >= answerSeconds * 1000) {
        idleStopped = true;       // no answer: the video pauses and accrual stops (earned time stays)
        if (!video.paused) video.pause();
        if (idlePrompt) idlePrompt.classList.add("stopped");
      }
    }, 1000);
  }

  // ---- 清晰度 and 省流量 -------------------------------------------------------------------------
  var renditions = {};
  try { renditions = JSON.parse(d.renditions || "{}"); } catch (e) {}
  var names = Object.keys(renditions).sort(function (a, b) { return parseInt(a, 10) - parseInt(b, 10); });
  var dataSaver = d.dataSaver === "true";
  var current = names.length ? names[0] : null;   // the <source> in the page is the smallest
  var resumed = false;
  function narrow() {
    var slow = navigator.connection && navigator.connection.saveData;
    return slow || (window.matchMedia && window.matchMedia("(max-width: 800px)").matches);
  }
  function markQuality() {
    document.querySelectorAll("[data-quality]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.quality === current ? "true" : "false");
    });
  }
  function switchTo(name) {
    if (!renditions[name] || name === current) { markQuality(); return; }
    var at = video.currentTime, wasPlaying = !video.paused;
    send(false);
    segmentStart = null;
    current = name;
    markQuality();
    if (!resumed) { video.src = renditions[name]; return; }   // before the first load: just pick it
    video.addEventListener("loadedmetadata", function restore() {
      video.removeEventListener("loadedmetadata", restore);
      video.currentTime = at;
      if (wasPlaying) { var p = video.play(); if (p && p.catch) p.catch(function () {}); }
    });
    video.src = renditions[name];
  }
  if (names.length) {
    var preferred = null;
    try { preferred = localStorage.getItem("kepu-quality"); } catch (e) {}
    var initial = dataSaver || narrow() ? names[0] : (renditions[preferred] ? preferred : names[names.length - 1]);
    switchTo(initial);
  }
  document.querySelectorAll("[data-quality]").forEach(function (b) {
    b.addEventListener("click", function () {
      try { localStorage.setItem("kepu-quality", b.dataset.quality); } catch (e) {}
      switchTo(b.dataset.quality);
    });
  });
  var saverBox = document.getElementById("data-saver");
  if (saverBox) saverBox.addEventListener("change", function () {
    dataSaver = saverBox.checked;
    fetch(d.dataSaverUrl, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ enabled: dataSaver }) }).catch(function () {});
    if (dataSaver) { video.preload = "none"; switchTo(names[0]); }
  });

  // ---- events ----------------------------------------------------------------------------------
  video.addEventListener("loadedmetadata", function () {
    if (resumed) return;
    resumed = true;
    var at = /(?:^#|&)t=(\d+(?:\.\d+)?)/.exec(location.hash);  // a search hit on a caption: lesson#t=<seconds>
    if (at && (!strict || +at[1] <= furthest)) { video.currentTime = Math.min(+at[1], video.duration); return; }
    var resume = parseFloat(d.resumeAt || "0");
    if (strict) resume = Math.min(resume, furthest);
    if (resume > 1 && resume < video.duration - 2) video.currentTime = resume;
  });
  video.addEventListener("play", function () {
    leaseLost = false;
    if (leaseBanner) leaseBanner.hidden = true;
    if (idleStopped) { idleStopped = false; hidePrompt(); }
    activity();
    send(true);
    openSegment();
  });
  video.addEventListener("playing", function () { if (segmentStart === null) openSegment(); });
  video.addEventListener("pause", function () { send(false); });
  video.addEventListener("ended", function () { send(false); });
  video.addEventListener("timeupdate", function () {
    if (video.seeking) return;
    var now = video.currentTime;
    if (counting() && now >= lastTime && now - lastTime < 3) furthest = Math.max(furthest, now);
    lastTime = now;
  });
  video.addEventListener("seeking", function () {
    closeSegment(lastTime);
    if (strict && video.currentTime > furthest + 1) {
      video.currentTime = furthest;   // no skipping past what has been watched
      say(d.msgSeek);
    }
  });
  video.addEventListener("seeked", function () { lastTime = video.currentTime; openSegment(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      send(false);
      if (strict && !video.paused) { video.pause(); say(d.msgHidden); }
    } else {
      openSegment();
    }
  });
  window.addEventListener("online", flush);
  window.addEventListener("pagehide", function () { send(false); });
  setInterval(function () { if (segmentStart !== null) send(false); else flush(); }, 10000);
  flush();
})();
