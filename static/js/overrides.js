// Overrides review page: "Reset selected" is enabled only while an override is selected.
(function () {
  "use strict";

  function sync() {
    var form = document.getElementById("bulk-reset-form");
    if (!form) return;
    var button = form.querySelector("button[type=submit]");
    var chosen = document.querySelectorAll('input[name="ids"][form="bulk-reset-form"]:checked').length;
    button.disabled = chosen === 0;
    button.title = chosen === 0 ? "Select at least one override to reset." : "";
  }

  // After app.js's "select all" handler has ticked the boxes.
  document.addEventListener("change", function () { setTimeout(sync, 0); });
  document.addEventListener("htmx:afterSettle", sync);
  // Never ask "Reset the selected overrides?" about nothing (Enter in a field included).
  window.addEventListener("submit", function (evt) {
    if (evt.target.id !== "bulk-reset-form") return;
    if (!document.querySelector('input[name="ids"][form="bulk-reset-form"]:checked')) {
      evt.preventDefault();
      evt.stopImmediatePropagation();
      if (window.beacon) window.beacon.toast("Select at least one override to reset.");
    }
  }, true);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", sync);
  } else {
    sync();
  }
})();
