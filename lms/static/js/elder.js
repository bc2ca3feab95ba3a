/* 长辈版 helpers, all optional: every page works without them.
   - 朗读: reads the lesson text, or a question with its choices, with the browser's speech synthesis
     (zh-CN); a visible 停止朗读 button while it speaks; a plain note when the tablet has no voice;
   - 看答案: commits one question's answer and shows its verdict in place, then locks that question
     (the form also works without JS);
   - PIN keypad: the big on-screen digits fill the PIN field;
   - 朗读提示 on the roster and PIN pages, and the big play button of a lesson in 长辈版;
   - time-out warning on shared tablets: an inline banner (no pop-up) with one large button and
     ≥ 20 s to press it before the server signs the learner out. */
(function () {
  "use strict";
  var synth = window.speechSynthesis;
  var bar = document.getElementById("read-aloud-bar");
  var stopButton = document.getElementById("read-aloud-stop");
  var lastTrigger = null;

  function textOf(el) {
    var clone = el.cloneNode(true);
    Array.prototype.forEach.call(clone.querySelectorAll("[data-no-read], button, script, .visually-hidden"),
      function (n) { n.parentNode.removeChild(n); });
    return clone.textContent.replace(/\s+/g, " ").trim();
  }

  function chineseVoice() {
    var voices = synth ? synth.getVoices() : [];
    for (var i = 0; i < voices.length; i++) { if (/^zh(-|_)?CN/i.test(voices[i].lang)) return voices[i]; }
    for (var j = 0; j < voices.length; j++) { if (/^zh/i.test(voices[j].lang)) return voices[j]; }
    return null;
  }

  function note(trigger, message) {
    var box = trigger.parentNode.querySelector(".read-aloud-note");
    if (!box) {
      box = document.createElement("p");
      box.className = "read-aloud-note";
      box.setAttribute("role", "status");
      trigger.parentNode.appendChild(box);
    }
    box.textContent = message;
  }

  function stop() {
    if (synth) synth.cancel();
    if (bar) bar.hidden = true;
    if (lastTrigger) { lastTrigger.setAttribute("aria-pressed", "false"); lastTrigger.focus(); lastTrigger = null; }
  }

  function speak(trigger, text) {
    if (!synth || typeof window.SpeechSynthesisUtterance !== "function") {
      note(trigger, trigger.dataset.noVoice);
      return;
    }
    synth.cancel();
    var voice = chineseVoice();
    if (!voice && synth.getVoices().length) {
      note(trigger, trigger.dataset.noVoice);
      return;
    }
    var utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = "zh-CN";
    utterance.rate = 0.9;
    if (voice) utterance.voice = voice;
    utterance.onend = utterance.onerror = function () {
      if (bar) bar.hidden = true;
      if (lastTrigger) lastTrigger.setAttribute("aria-pressed", "false");
    };
    lastTrigger = trigger;
    trigger.setAttribute("aria-pressed", "true");
    if (bar) bar.hidden = false;
    synth.speak(utterance);
    if (!voice) {
      // Voices load late on some tablets; when none ever arrives, say so instead of staying silent.
      setTimeout(function () {
        if (!chineseVoice() && !synth.speaking) { stop(); note(trigger, trigger.dataset.noVoice); }
      }, 1500);
    }
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-read-target]"), function (button) {
    if (!synth) return;              // no speech at all: the button stays hidden, nothing else changes
    button.hidden = false;
    button.addEventListener("click", function () {
      if (synth.speaking && lastTrigger === button) { stop(); return; }
      var parts = [];
      Array.prototype.forEach.call(document.querySelectorAll(button.dataset.readTarget), function (el) {
        parts.push(textOf(el));
      });
      speak(button, parts.join("。 "));
    });
  });
  if (stopButton) stopButton.addEventListener("click", stop);
  window.addEventListener("pagehide", function () { if (synth) synth.cancel(); });

  // --- 看答案: one question at a time, in place ------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll("button[data-check]"), function (button) {
    button.addEventListener("click", function (event) {
      var form = button.form;
      if (!window.fetch || !window.DOMParser) return;   // the plain form post does the same
      event.preventDefault();
      var data = new FormData(form);
      data.append("check", button.value);
      fetch(button.getAttribute("formaction"), { method: "POST", body: data, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var id = "check-" + button.value;
          var fresh = doc.getElementById(id), old = document.getElementById(id);
          if (fresh && old) {
            old.parentNode.replaceChild(document.importNode(fresh, true), old);
            if (!doc.querySelector("#q" + button.value + " button[data-check]")) {
              // the answer is committed and final: the question can no longer be changed
              Array.prototype.forEach.call(document.querySelectorAll("#q" + button.value + " input"),
                function (input) { input.disabled = true; });
              button.parentNode.removeChild(button);
            }
            var placed = document.getElementById(id);
            placed.setAttribute("tabindex", "-1");
            placed.focus();
          }
        })
        .catch(function () { form.requestSubmit ? form.requestSubmit(button) : form.submit(); });
    });
  });

  // --- PIN keypad ----------------------------------------------------------------------------------------
  var pin = document.getElementById("pin");
  if (pin) {
    var keypad = document.getElementById("keypad");
    keypad.hidden = false;
    keypad.addEventListener("click", function (event) {
      var key = event.target.closest("button");
      if (!key) return;
      event.preventDefault();
      var value = key.dataset.key;
      if (value === "clear") pin.value = "";
      else if (value === "back") pin.value = pin.value.slice(0, -1);
      else if (pin.value.length < 4) pin.value += value;
      if (pin.value.length === 4 && key.dataset.key !== "back") {
        document.getElementById("pin-submit").focus();
      }
    });
  }

  // --- 朗读提示 on the class tablet: the roster and PIN pages say what to do ----------------------------
  // On when this tablet's switch (#read-aloud-toggle, kept in localStorage) is on: each [data-speak-on-load]
  // is spoken once when the page opens, and at once when the switch is turned on (a tap lets the
  // browser speak even where it refuses speech nobody asked for).
  var PROMPTS_KEY = "kepu.readAloudPrompts";
  var promptsOn = function () { try { return localStorage.getItem(PROMPTS_KEY) === "1"; } catch (e) { return false; } };
  var speakPrompts = function () {
    var parts = [];
    Array.prototype.forEach.call(document.querySelectorAll("[data-speak-on-load]"), function (el) { parts.push(textOf(el)); });
    if (!parts.length || !synth || typeof window.SpeechSynthesisUtterance !== "function") return;
    synth.cancel();
    var utterance = new SpeechSynthesisUtterance(parts.join("。 "));
    utterance.lang = "zh-CN";
    utterance.rate = 0.9;
    var voice = chineseVoice();
    if (voice) utterance.voice = voice;
    synth.speak(utterance);
  };
  var promptsToggle = document.getElementById("read-aloud-toggle");
  if (promptsToggle && synth) {
    var showPrompts = function () {
      var on = promptsOn();
      promptsToggle.setAttribute("aria-pressed", on ? "true" : "false");
      promptsToggle.textContent = on ? promptsToggle.dataset.on : promptsToggle.dataset.off;
    };
    promptsToggle.hidden = false;
    showPrompts();
    promptsToggle.addEventListener("click", function () {
      try { localStorage.setItem(PROMPTS_KEY, promptsOn() ? "0" : "1"); } catch (e) { /* private mode: no memory */ }
      showPrompts();
      if (promptsOn()) speakPrompts(); else synth.cancel();
    });
    if (promptsOn()) speakPrompts();
  }

  // --- 长辈版 play button: one big ▶ 播放 / ❚❚ 暂停 under the video ------------------------------------
  var playToggle = document.getElementById("play-toggle");
  var lessonVideo = document.getElementById("lesson-video");
  if (playToggle && lessonVideo) {
    var showPlay = function () {
      playToggle.textContent = lessonVideo.paused ? playToggle.dataset.play : playToggle.dataset.pause;
    };
    playToggle.hidden = false;
    playToggle.addEventListener("click", function () {
      if (lessonVideo.paused) { var started = lessonVideo.play(); if (started && started.catch) started.catch(function () {}); }
      else lessonVideo.pause();
    });
    lessonVideo.addEventListener("play", showPlay);
    lessonVideo.addEventListener("pause", showPlay);
    lessonVideo.addEventListener("ended", showPlay);
    showPlay();
  }

  // --- time-out warning on shared tablets ------------------------------------------------------------
  var idle = parseInt(document.body.dataset.idleSeconds || "0", 10);
  if (idle > 0) {
    var warnBefore = Math.max(20, parseInt(document.body.dataset.idleWarning || "60", 10));
    var banner = document.getElementById("idle-warning");
    var extend = document.getElementById("idle-extend");
    var token = document.querySelector('meta[name="csrf-token"]').content;
    var timer = null, lastPing = Date.now();
    var arm = function () {
      clearTimeout(timer);
      timer = setTimeout(function () { banner.hidden = false; extend.focus(); },
                         Math.max(0, idle - warnBefore) * 1000);
    };
    var ping = function () {
      lastPing = Date.now();
      return fetch(document.body.dataset.pingUrl, { method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": token } }).then(function (r) { return r.json(); })
        .then(function (state) { if (!state.signed_in) window.location.reload(); });
    };
    extend.addEventListener("click", function () { banner.hidden = true; arm(); ping(); });
    // someone who is reading and tapping is not idle: tell the server now and then
    // (a playing lesson video counts too: its timeupdate events are caught here)
    ["click", "keydown", "touchstart", "scroll", "timeupdate"].forEach(function (name) {
      document.addEventListener(name, function () {
        if (!banner.hidden) return;
        if (Date.now() - lastPing > 60000) { ping(); arm(); }
      }, { passive: true, capture: true });
    });
    arm();
  }
})();
