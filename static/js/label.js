// Keyboard-first labeling: 1/← left, 2/→ right, 3 tie, 4 both bad, s skip.
// Keys click the matching button, so HTMX and the no-JS form share one path.
(function () {
  "use strict";
  var KEYS = { "1": "1", "ArrowLeft": "1", "2": "2", "ArrowRight": "2", "3": "3", "4": "4", "s": "s", "S": "s" };
  var shownAt = performance.now();
  var busy = false;

  function form() { return document.getElementById("pair-form"); }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable)) return;
    var key = KEYS[event.key];
    var f = form();
    if (!key || !f || busy) return;
    var button = f.querySelector('button[data-key="' + key + '"]');
    if (!button || button.disabled) return;
    event.preventDefault();
    button.click();
  });

  // Time from showing the pair to the decision, measured where it happens.
  document.addEventListener("htmx:configRequest", function (event) {
    busy = true;
    event.detail.parameters["latency_ms"] = String(Math.round(performance.now() - shownAt));
  });
  document.addEventListener("submit", function (event) {
    var input = event.target.querySelector('input[name="latency_ms"]');
    if (input) input.value = String(Math.round(performance.now() - shownAt));
  });
  // afterSwap, not afterSettle: the new card is usable as soon as it is in
  // the page, and a key pressed during the settle delay must not be lost.
  document.addEventListener("htmx:afterSwap", function () {
    busy = false;
    shownAt = performance.now();
  });
  document.addEventListener("htmx:responseError", function () { busy = false; });
  document.addEventListener("htmx:sendError", function () { busy = false; });
})();
