/* The import page's candidate list: filter the rows by text, tick or untick the rows shown.
   Without JavaScript every row is shown and its checkbox works the same. */
(function () {
  "use strict";
  var form = document.querySelector("[data-candidates]");
  if (!form) return;
  var filter = form.querySelector("[data-candidate-filter]");
  var count = form.querySelector("[data-candidate-count]");
  var rows = Array.prototype.slice.call(form.querySelectorAll("[data-candidate]"));

  function rowText(row) {
    return Array.prototype.map.call(row.querySelectorAll("input[type=text], input[type=url], textarea, select"), function (field) {
      return field.value;
    }).join(" ").toLowerCase();
  }

  function update() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0, ticked = 0;
    rows.forEach(function (row) {
      var text = rowText(row);
      var match = words.every(function (word) { return text.indexOf(word) !== -1; });
      row.hidden = !match;
      if (match) shown += 1;
      if (row.querySelector("input[type=checkbox]").checked) ticked += 1;
    });
    count.textContent = shown + " of " + rows.length + " shown, " + ticked + " ticked";
  }

  filter.hidden = false;
  form.querySelectorAll("[data-tick]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var on = button.getAttribute("data-tick") === "1";
      rows.forEach(function (row) {
        if (!row.hidden) row.querySelector("input[type=checkbox]").checked = on;
      });
      update();
    });
  });
  filter.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
