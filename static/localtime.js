// Shows incident windows in the viewer's own time zone, next to the
// incident's zone and UTC that the server already printed:
// "2017-05-10 02:48–03:31 (Asia/Tokyo)".
(function () {
  "use strict";
  function parts(d, zone) {
    var out = {};
    new Intl.DateTimeFormat("en-CA", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).formatToParts(d).forEach(function (p) { out[p.type] = p.value; });
    return { day: out.year + "-" + out.month + "-" + out.day, time: out.hour + ":" + out.minute };
  }
  function label(el) {
    var a = new Date(el.dataset.start), b = new Date(el.dataset.end);
    if (isNaN(a) || isNaN(b)) return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone) return;
    if (zone === "UTC" || zone === "Etc/UTC") {
      el.textContent = "as in UTC (your browser is set to UTC)";
      return;
    }
    var x = parts(a, zone), y = parts(b, zone);
    el.textContent = x.day + " " + x.time + "–" + (x.day === y.day ? "" : y.day + " ") + y.time + " (" + zone + ")";
  }
  window.playbackGatewayLocalTime = label;
  document.querySelectorAll(".localtime[data-start][data-end]").forEach(label);
})();
