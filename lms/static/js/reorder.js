/* Lesson order on a course's page (lms/templates/courses/admin_course.html). The 上移/下移 buttons are
   forms that work without JavaScript (the page reloads); here they move the row in place instead,
   keep the keyboard focus on the pressed button and announce the move. On any failure the form is
   submitted the ordinary way. */
(function () {
  "use strict";
  var list = document.querySelector("[data-reorder]");
  if (!list || !window.fetch || !window.FormData) return;
  var status = document.getElementById("reorder-status");

  function rows() { return Array.prototype.slice.call(list.children); }

  function markEdges() {
    var all = rows();
    all.forEach(function (row, i) {
      row.querySelector('form[data-move="up"] button').disabled = i === 0;
      row.querySelector('form[data-move="down"] button').disabled = i === all.length - 1;
    });
  }

  list.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-move]");
    if (!form) return;
    event.preventDefault();
    var row = form.closest("li");
    var direction = form.dataset.move;
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (data) {
        (data.order || []).forEach(function (id) {
          var item = document.getElementById("lesson-" + id);
          if (item) list.appendChild(item);
        });
        markEdges();
        var pressed = form.querySelector("button");
        var other = row.querySelector('form[data-move="' + (direction === "up" ? "down" : "up") + '"] button');
        (pressed.disabled ? other : pressed).focus();
        if (status) {
          var title = row.querySelector(".lesson-row-title").textContent;
          status.textContent = (direction === "up" ? list.dataset.movedUp : list.dataset.movedDown) + "：" + title;
        }
      })
      .catch(function () { form.submit(); });
  });
})();
