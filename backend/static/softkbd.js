// The manual's software keyboard (ソフトウェアキーボードを使用して入力する): an on-screen
// keypad with a shuffled layout for password fields, so that a key logger or a glance at the
// finger positions reveals less. Works with mouse, touch and keyboard; every key is a real
// button with a label. Loaded as a static file: the Content-Security-Policy forbids inline script.
(function () {
  "use strict";
  var DIGITS = "0123456789".split("");
  var LETTERS = "abcdefghijklmnopqrstuvwxyz".split("");

  function shuffled(list) {
    var a = list.slice();
    var rnd = new Uint32Array(a.length);
    window.crypto.getRandomValues(rnd);
    for (var i = a.length - 1; i > 0; i--) {
      var j = rnd[i] % (i + 1);
      var t = a[i]; a[i] = a[j]; a[j] = t;
    }
    return a;
  }

  function words() {
    var el = document.getElementById("softkbd-i18n");
    var d = el ? el.dataset : {};
    return {
      title: d.title || "Software keyboard", close: d.close || "Close", clear: d.clear || "Clear",
      backspace: d.backspace || "Backspace", shift: d.shift || "Shift"
    };
  }

  function button(text, label, onPress) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", function (ev) { ev.preventDefault(); onPress(); });
    return b;
  }

  function open(toggle) {
    var input = document.getElementById(toggle.dataset.softkbdFor);
    if (!input) { return; }
    var existing = document.getElementById("kbd-" + input.id);
    if (existing) { close(toggle, existing); return; }
    var w = words();
    var layout = toggle.dataset.softkbdLayout === "digits" ? "digits" : "alnum";
    var upper = false;
    var panel = document.createElement("div");
    panel.className = "softkbd";
    panel.id = "kbd-" + input.id;
    panel.setAttribute("role", "group");
    var labelText = document.querySelector("label[for='" + input.id + "']");
    panel.setAttribute("aria-label", w.title + (labelText ? " - " + labelText.textContent.trim() : ""));
    var title = document.createElement("p");
    title.className = "softkbd-title";
    title.textContent = w.title;
    panel.appendChild(title);
    var keys = document.createElement("div");
    keys.className = "softkbd-keys";
    panel.appendChild(keys);

    function type(ch) {
      var max = input.maxLength > 0 ? input.maxLength : 64;
      if (input.value.length < max) {
        input.value += ch;
        input.dispatchEvent(new Event("input", { bubbles: true }));
      }
    }
    function draw() {
      keys.textContent = "";
      var chars = layout === "digits" ? DIGITS : DIGITS.concat(LETTERS);
      shuffled(chars).forEach(function (c) {
        var ch = upper ? c.toUpperCase() : c;
        keys.appendChild(button(ch, ch, function () { type(ch); }));
      });
    }
    draw();
    var ctl = document.createElement("div");
    ctl.className = "softkbd-ctl";
    if (layout === "alnum") {
      var shift = button("A/a", w.shift, function () {
        upper = !upper; shift.setAttribute("aria-pressed", String(upper)); draw();
      });
      shift.setAttribute("aria-pressed", "false");
      ctl.appendChild(shift);
    }
    ctl.appendChild(button("←", w.backspace, function () {
      input.value = input.value.slice(0, -1);
    }));
    ctl.appendChild(button(w.clear, w.clear, function () { input.value = ""; }));
    ctl.appendChild(button(w.close, w.close, function () { close(toggle, panel); }));
    panel.appendChild(ctl);
    panel.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { ev.preventDefault(); close(toggle, panel); }
    });
    toggle.parentNode.parentNode.appendChild(panel);
    toggle.setAttribute("aria-expanded", "true");
    var first = keys.querySelector("button");
    if (first) { first.focus(); }
  }

  function close(toggle, panel) {
    panel.parentNode.removeChild(panel);
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".softkbd-toggle"), function (t) {
      t.addEventListener("click", function (ev) { ev.preventDefault(); open(t); });
    });
  });
})();
