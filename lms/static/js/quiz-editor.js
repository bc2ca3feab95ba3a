// Quiz editor (lms/templates/quizzes/admin_question.html): show only the fields the chosen question type
// uses (choices for single/multiple choice, the answer for true/false) and the scenario's details only
// when a scenario is chosen. Without JavaScript every field shows and the server ignores the unused ones.
(function () {
  "use strict";
  var form = document.querySelector("[data-quiz-editor]");
  if (!form) return;
  var kind = form.querySelector("select[name='kind']");
  var scenarioKind = form.querySelector("select[name='scenario_kind']");
  var detail = form.querySelector("[data-scenario-detail]");

  function showKind() {
    form.querySelectorAll("[data-kinds]").forEach(function (part) {
      var kinds = part.getAttribute("data-kinds").split(" ");
      part.hidden = kinds.indexOf(kind.value) === -1;
    });
  }

  function showScenario() {
    if (!detail) return;
    var hasText = Array.prototype.some.call(detail.querySelectorAll("input, textarea"), function (el) {
      return el.value.trim() !== "";
    });
    detail.hidden = scenarioKind.value === "" && !hasText; // never hide what was written
  }

  if (kind) { kind.addEventListener("change", showKind); showKind(); }
  if (scenarioKind) { scenarioKind.addEventListener("change", showScenario); showScenario(); }
})();
