// Beacon's own behaviour on top of htmx (no inline scripts: the CSP forbids them).
(function () {
  "use strict";

  function toast(message) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;
    el.hidden = false;
    clearTimeout(el._timer);
    el._timer = setTimeout(function () { el.hidden = true; }, 5000);
  }

  // Errors that htmx does not swap (403, 404, 409, 500...) still tell the user something.
  document.addEventListener("htmx:responseError", function (evt) {
    var status = evt.detail.xhr.status;
    var text = {403: "Your role does not allow this action.", 404: "That item no longer exists.",
                409: "Someone else changed this in the meantime. Reload to see the current version.",
                413: "That file is too large.", 429: "Too many requests. Wait a moment and try again."}[status];
    toast(text || "Something went wrong (" + status + "). Try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The server could not be reached. Check your connection and try again.");
  });
  document.addEventListener("showMessage", function (evt) {
    if (evt.detail && evt.detail.value) toast(evt.detail.value);
  });

  // Confirmation before destructive actions: <form data-confirm="Delete this segment?">.
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      evt.preventDefault();
      evt.stopImmediatePropagation();
    }
  }, true);
  document.addEventListener("htmx:confirm", function (evt) {
    var el = evt.detail.elt;
    var question = el.getAttribute && el.getAttribute("data-confirm");
    var trigger = evt.detail.triggeringEvent;
    // Forms already asked in the submit listener above; ask here only for other triggers.
    if (question && !(trigger && trigger.type === "submit")) {
      evt.preventDefault();
      if (window.confirm(question)) evt.detail.issueRequest(true);
    }
  });

  // "Select all" checkboxes: <input type="checkbox" data-select-all="name-of-boxes">.
  document.addEventListener("change", function (evt) {
    var name = evt.target.getAttribute && evt.target.getAttribute("data-select-all");
    if (!name) return;
    document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
      box.checked = evt.target.checked;
    });
  });

  window.beacon = { toast: toast };
})();
