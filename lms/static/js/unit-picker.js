/* The unit picker: an <input data-unit-picker="/admin/units/search"> holding a unit's code becomes a
   combobox — typing part of a name or code lists the matching units, and picking one fills in its code.
   Without this script the input still takes a typed code. Loaded once per picker; runs once. */
(function () {
  "use strict";
  if (window.unitPickerReady) return;
  window.unitPickerReady = true;
  var DELAY = 200;
  var serial = 0;

  function setup(input) {
    var id = input.id || "unit-picker-" + (++serial);
    var list = document.createElement("ul");
    var chosen = document.getElementById(input.dataset.chosen);
    var timer = null, asked = "", options = [], active = -1;
    list.id = id + "-list";
    list.className = "unit-picker-list";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.insertAdjacentElement("afterend", list);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      options.forEach(function (item, i) { item.setAttribute("aria-selected", i === index ? "true" : "false"); });
      active = index;
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      }
    }

    function pick(unit) {
      input.value = unit.code;
      if (chosen) chosen.textContent = unit.name + "（" + unit.code + "）" + (unit.within ? " · " + unit.within : "");
      close();
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function show(units) {
      list.textContent = "";
      options = [];
      if (!units.length) {
        var none = document.createElement("li");
        none.className = "unit-picker-none";
        none.setAttribute("role", "option");
        none.setAttribute("aria-disabled", "true");
        none.textContent = input.dataset.empty;
        list.appendChild(none);
      }
      units.forEach(function (unit, i) {
        var item = document.createElement("li");
        var meta = document.createElement("small");
        item.id = list.id + "-" + i;
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", "false");
        item.textContent = unit.name + " ";
        meta.textContent = [unit.code, unit.kind, unit.within].filter(Boolean).join(" · ");
        item.appendChild(meta);
        item.addEventListener("mousedown", function (event) { event.preventDefault(); pick(unit); });
        list.appendChild(item);
        options.push(item);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      active = -1;
    }

    function ask() {
      var q = input.value.trim();
      if (!q) { close(); return; }
      asked = q;
      var url = input.dataset.unitPicker + (input.dataset.unitPicker.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(q);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (units) {
          if (asked !== q || document.activeElement !== input) return;  // a later keystroke asked again
          show(units);
          list._units = units;
        })
        .catch(function () { close(); });
    }

    input.addEventListener("input", function () {
      if (chosen) chosen.textContent = "";
      clearTimeout(timer);
      timer = setTimeout(ask, DELAY);
    });
    input.addEventListener("keydown", function (event) {
      if (list.hidden) {
        if (event.key === "ArrowDown" && input.value.trim()) { ask(); event.preventDefault(); }
        return;
      }
      if (event.key === "ArrowDown" && options.length) {
        highlight((active + 1) % options.length); event.preventDefault();
      } else if (event.key === "ArrowUp" && options.length) {
        highlight(active <= 0 ? options.length - 1 : active - 1); event.preventDefault();
      } else if (event.key === "Enter" && active >= 0) {
        pick(list._units[active]); event.preventDefault();
      } else if (event.key === "Escape") {
        close(); event.preventDefault();
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("input[data-unit-picker]"), setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
