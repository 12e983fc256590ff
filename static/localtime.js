// Shows incident windows in the viewer's own time zone, next to the
// incident's zone and UTC that the server already printed.
(function () {
  "use strict";
  function fmt(d, opts) {
    return new Intl.DateTimeFormat(undefined, opts).format(d);
  }
  document.querySelectorAll(".localtime[data-start][data-end]").forEach(function (el) {
    var a = new Date(el.dataset.start), b = new Date(el.dataset.end);
    if (isNaN(a) || isNaN(b)) return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    var day = { year: "numeric", month: "2-digit", day: "2-digit" };
    var time = { hour: "2-digit", minute: "2-digit", hour12: false };
    var sameDay = fmt(a, day) === fmt(b, day);
    el.textContent = fmt(a, day) + " " + fmt(a, time) + "–" +
      (sameDay ? "" : fmt(b, day) + " ") + fmt(b, time) + " (" + zone + ")";
  });
})();
