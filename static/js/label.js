// Keyboard-first labeling. Every control has a key, shown on the page:
//   1/← left, 2/→ right, 3 tie, 4 both bad, s skip, u undo, h your votes,
//   z/x/c strength (slightly, better, much better), r reason, i instructions.
// Vote keys click the matching button, so HTMX and the no-JS form share one
// path. Typing in a text box never votes; Escape leaves it. A focused
// strength radio does not swallow the keys: the arrows vote, as everywhere.
(function () {
  "use strict";
  var VOTE_KEYS = { "1": "1", "ArrowLeft": "1", "2": "2", "ArrowRight": "2", "3": "3", "4": "4", "s": "s", "S": "s" };
  var STRENGTH_KEYS = { "z": "z", "Z": "z", "x": "x", "X": "x", "c": "c", "C": "c" };
  var shownAt = performance.now();
  var busy = false;

  function form() { return document.getElementById("pair-form"); }

  function isTextEntry(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(radio|checkbox|button|submit|reset|hidden)$/.test(el.type);
  }

  function click(selector) {
    var el = document.querySelector(selector);
    if (!el || el.disabled) return false;
    el.click();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (isTextEntry(target)) {
      if (event.key === "Escape") {  // back to the keys
        event.preventDefault();
        target.blur();
      }
      return;
    }
    var key = event.key;
    if (key === "Escape") {
      if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
      return;
    }
    if (key === "i" || key === "I") {
      var details = document.getElementById("instructions");
      if (details) { event.preventDefault(); details.open = !details.open; }
      return;
    }
    if (key === "h" || key === "H") {
      var link = document.querySelector('a[data-key="h"]');
      if (link) { event.preventDefault(); window.location.href = link.href; }
      return;
    }
    if (busy) return;
    if (key === "u" || key === "U") {
      if (click('#undo-form button[data-key="u"]')) event.preventDefault();
      return;
    }
    var f = form();
    if (!f) return;
    if (STRENGTH_KEYS[key]) {
      var radio = f.querySelector('input[data-key="' + STRENGTH_KEYS[key] + '"]');
      if (radio && !radio.disabled) { event.preventDefault(); radio.checked = true; }
      return;
    }
    if (key === "r" || key === "R") {
      var box = f.querySelector('textarea[data-key="r"]');
      if (box) { event.preventDefault(); box.focus(); }
      return;
    }
    if (VOTE_KEYS[key]) {
      var button = f.querySelector('button[data-key="' + VOTE_KEYS[key] + '"]');
      if (!button || button.disabled) return;
      event.preventDefault();  // also keeps an arrow from moving a focused radio
      button.click();
    }
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
  // the page. htmx sets up its forms when it settles, and the settle delay is
  // 0 (htmx-config in base.html), so it settles in the same task as the swap:
  // no key can land on a form htmx has not set up yet, which would post it
  // as a plain form and reload the page.
  document.addEventListener("htmx:afterSwap", function () {
    busy = false;
    shownAt = performance.now();
  });
  document.addEventListener("htmx:responseError", function () { busy = false; });
  document.addEventListener("htmx:sendError", function () { busy = false; });
})();
