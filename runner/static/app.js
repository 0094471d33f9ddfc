// Sandfire dashboard: small enhancements on top of htmx. Every page works without this file
// (links, forms and redirects); it only saves work and clicks. No eval, no inline code.
(function () {
  "use strict";

  // Background tabs do not poll: a hidden tab's periodic requests are skipped.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute("hx-trigger")) {
      event.preventDefault();
    }
  });

  // "Select all" for the bulk actions of the run list.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box && box.matches && box.matches("input[data-select-all]")) {
      document.querySelectorAll("input[type=checkbox][name=id]").forEach(function (row) {
        row.checked = box.checked;
      });
    }
  });

  // Times are shown in UTC; the toggle shows them in the browser's zone instead.
  function showTimes(local) {
    document.querySelectorAll("time[datetime]").forEach(function (t) {
      if (!t.dataset.utc) t.dataset.utc = t.textContent;
      t.textContent = local ? new Date(t.getAttribute("datetime")).toLocaleString() : t.dataset.utc;
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target;
    if (button && button.matches && button.matches("button[data-time-toggle]")) {
      var local = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", local ? "true" : "false");
      button.textContent = local ? "Local time" : "UTC";
      try { localStorage.setItem("sf-local-time", local ? "1" : ""); } catch (e) { /* private mode */ }
      showTimes(local);
    }
  });
  function restore() {
    var local = false;
    try { local = localStorage.getItem("sf-local-time") === "1"; } catch (e) { /* private mode */ }
    var button = document.querySelector("button[data-time-toggle]");
    if (button) {
      button.hidden = false;
      button.setAttribute("aria-pressed", local ? "true" : "false");
      button.textContent = local ? "Local time" : "UTC";
    }
    if (local) showTimes(true);
  }
  document.addEventListener("DOMContentLoaded", restore);
  document.addEventListener("htmx:afterSettle", restore);
})();
