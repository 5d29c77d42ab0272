// Behaviour every page shares, with no inline script (the CSP forbids it):
// - a form with data-confirm asks before it submits (Promote, Roll back,
//   Revoke, Cancel, Remove member): a click that cannot be taken back;
// - flash messages go when their moment has passed: a success or info
//   message fades after a few seconds, every message has a dismiss button,
//   and a message never comes back with a page that HTMX refreshes.
(function () {
  "use strict";
  var FADE_AFTER_MS = 6000;

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  function dismiss(item) {
    var list = item.parentNode;
    item.remove();
    if (list && !list.children.length) list.remove();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".messages .dismiss");
    if (button) dismiss(button.closest("li"));
  });

  function ready() {
    document.querySelectorAll(".messages li[data-flash]").forEach(function (item) {
      if (item.classList.contains("error") || item.classList.contains("warning")) return;  // stays until dismissed
      window.setTimeout(function () { if (item.isConnected) dismiss(item); }, FADE_AFTER_MS);
    });
  }
  if (document.readyState !== "loading") ready();
  else document.addEventListener("DOMContentLoaded", ready);
})();
