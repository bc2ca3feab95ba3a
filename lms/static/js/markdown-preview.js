/* Live preview of lesson Markdown (lms/templates/courses/admin_lesson.html). The text is posted to the
   server, which renders it with the same sanitiser as import (lms/courses/markdown.py) and returns the
   HTML learners will get; a script in the text comes back harmless. Without JavaScript the
   "预览，不保存" button does the same through the form. */
(function () {
  "use strict";
  var box = document.getElementById("markdown-preview");
  var token = document.querySelector('meta[name="csrf-token"]');
  if (!box || !token || !window.fetch || !window.FormData) return;
  var source = document.getElementById(box.dataset.source);
  if (!source) return;
  var timer = null, sent = 0;

  function render() {
    var mine = ++sent;
    var body = new FormData();
    body.append("csrf_token", token.content);
    body.append("text", source.value);
    fetch(box.dataset.previewUrl, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": token.content, Accept: "application/json" }
    })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (mine !== sent) return;               // a newer request is on its way
        if (typeof data.html === "string") { box.innerHTML = data.html; box.removeAttribute("data-error"); }
        else if (data.error) { box.textContent = data.error; box.setAttribute("data-error", "1"); }
      })
      .catch(function () { /* offline: the preview stays as it was */ });
  }

  source.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(render, 400);
  });
})();
