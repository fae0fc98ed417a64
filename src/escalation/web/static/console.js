// Escalation console: live SLA countdowns and copy buttons. Everything else is plain HTML + htmx.
(function () {
  "use strict";
  var serverNow = Date.parse(document.body.dataset.serverNow || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now(); // follow the service's clock, not the browser's

  function fmt(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var parts = d ? [d + "d", h + "h", m + "m"] : h ? [h + "h", m + "m", sec + "s"] : [m + "m", sec + "s"];
    return ms < 0 ? "overdue by " + parts.join(" ") : parts.join(" ") + " left";
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (isNaN(due)) return;
      var ms = due - now;
      el.textContent = fmt(ms);
      el.classList.toggle("overdue", ms < 0);
      el.classList.toggle("soon", ms >= 0 && ms < 3600 * 1000);
    });
  }

  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);

  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    source.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(function () { button.textContent = "Copied"; },
        function () { button.textContent = "Selected: press Ctrl+C"; });
    } else {
      button.textContent = "Selected: press Ctrl+C";
    }
  });
})();
