/* 练一练: taps on the drawn phone go to the server, which judges them and keeps the learner's step
   (a tablet swap resumes there). A right tap says 对了 and moves on; a wrong one says a gentle word;
   after two wrong taps on a step the server names the right place and it lights up with 点这里.
   With 朗读 on, each instruction is spoken (zh-CN), as elder.js does; the switch is the tablet-wide one
   elder.js keeps for the roster and PIN prompts (the same localStorage key), so one choice serves both.
   The phone is sized to what is left of the window, so phone and instruction fit the first screen.
   Without this script the phone's buttons still work: each is a form submit. */
(function () {
  "use strict";
  var root = document.getElementById("practice");
  if (!root) return;
  var url = root.dataset.tapUrl, count = parseInt(root.dataset.count, 10), step = parseInt(root.dataset.step, 10);
  var token = (document.querySelector("meta[name=csrf-token]") || {}).content;
  var work = document.getElementById("practice-work"), done = document.getElementById("practice-done");
  var instruction = document.getElementById("practice-instruction");
  var feedback = document.getElementById("practice-feedback");
  var counter = document.getElementById("practice-count");
  var speakButton = document.getElementById("practice-speak");
  var phone = root.querySelector(".phone");
  var synth = window.speechSynthesis, busy = false, SPEAK_KEY = "kepu.readAloudPrompts";

  function screen(n) { return root.querySelector('.phone-screen[data-step="' + n + '"]'); }

  function speakingOn() {
    try { return !!synth && window.localStorage.getItem(SPEAK_KEY) === "1"; } catch (e) { return false; }
  }

  function speak(text) {
    if (!speakingOn() || !text) return;
    synth.cancel();
    var utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = "zh-CN";
    var voice = synth.getVoices().filter(function (v) { return /^zh/i.test(v.lang); })[0];
    if (voice) utterance.voice = voice;
    utterance.rate = 0.9;
    synth.speak(utterance);
  }

  function say(text, kind) {
    feedback.textContent = text;
    feedback.className = "practice-feedback" + (kind ? " is-" + kind : "");
  }

  function fit() {
    // the phone takes what is left of the window below its top (never less than its CSS minimum)
    if (work.hidden) return;
    var top = phone.getBoundingClientRect().top + window.pageYOffset;
    var room = Math.floor(window.innerHeight - top - 8);
    phone.style.setProperty("--phone-h", Math.max(380, Math.min(640, room)) + "px");
  }

  function show(n, moveFocus) {
    step = n;
    Array.prototype.forEach.call(root.querySelectorAll(".phone-screen"), function (form) {
      form.hidden = parseInt(form.dataset.step, 10) !== n;
      Array.prototype.forEach.call(form.querySelectorAll(".is-hint, .is-right"), function (el) {
        el.classList.remove("is-hint", "is-right");
      });
      Array.prototype.forEach.call(form.querySelectorAll(".tap-here"), function (el) { el.hidden = true; });
    });
    if (n >= count) {
      work.hidden = true;
      done.hidden = false;
      done.querySelector(".practice-done-title").focus();
      speak(root.dataset.msgDone);
      return;
    }
    instruction.textContent = screen(n).dataset.instruction;
    counter.textContent = root.dataset.msgCount.replace("{n}", n + 1);
    if (moveFocus) instruction.focus();
    speak(instruction.textContent);
  }

  function light(ids) {
    var form = screen(step);
    ids.forEach(function (id) {
      var target = form.querySelector('[data-target="' + id + '"]');
      if (!target) return;
      target.classList.add("is-hint");
      var label = target.querySelector(".tap-here");
      if (label) label.hidden = false;
    });
  }

  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("phone-screen")) return;
    event.preventDefault();
    var button = event.submitter;
    if (busy || !button || !button.dataset.target) return;
    busy = true;
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({ step: step, target: button.dataset.target })
    }).then(function (r) {
      if (r.redirected) { window.location.reload(); throw new Error("signed out"); }  // sent to sign in
      if (!r.ok && r.status !== 409) throw new Error(r.status);
      return r.json();
    }).then(function (state) {
      if (state.outcome === "right") {
        var word = form.dataset.right || root.dataset.msgRight;
        button.classList.add("is-right");
        say("✔ " + word, "right");
        speak(word);
        if (state.credited) {
          var credited = document.getElementById("practice-credited");
          credited.textContent = state.credited;
          credited.hidden = false;
        }
        setTimeout(function () { busy = false; show(state.step, true); }, 900);
        return;
      }
      if (state.outcome === "wrong") {
        var gentle = state.hint.length ? root.dataset.msgHint : (form.dataset.wrong || root.dataset.msgWrong);
        say(gentle, state.hint.length ? "hint" : "wrong");
        speak(gentle);
        light(state.hint);
      } else {  // out of step (another tablet moved on, or practising again there): follow the server
        say("", "");
        show(state.step, true);
        light(state.hint || []);
      }
      busy = false;
    }).catch(function () {
      say(root.dataset.msgOffline, "wrong");
      busy = false;
    });
  });

  if (synth && speakButton) {
    var label = function () {
      var on = speakingOn();
      speakButton.setAttribute("aria-pressed", on ? "true" : "false");
      speakButton.textContent = on ? root.dataset.msgSpeakOn : root.dataset.msgSpeakOff;
    };
    speakButton.hidden = false;
    label();
    speakButton.addEventListener("click", function () {
      try { window.localStorage.setItem(SPEAK_KEY, speakingOn() ? "0" : "1"); } catch (e) { /* private mode */ }
      label();
      if (speakingOn()) speak(instruction.textContent); else synth.cancel();
    });
    window.addEventListener("pagehide", function () { synth.cancel(); });
  }

  fit();
  window.addEventListener("resize", fit);
  if (step < count) speak(instruction.textContent);
})();
