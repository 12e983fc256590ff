// The demo CRM: each Play button loads the gateway's embeddable player in
// the side panel; the player says itself when a recording cannot play, and
// reports what happens through postMessage, which this page shows.
(function () {
  "use strict";
  var frame = document.getElementById("player-frame");
  var title = document.getElementById("np-title");
  var meta = document.getElementById("np-meta");
  var words = { ready: "Loading…", play: "Playing", pause: "Paused", ended: "Finished" };

  document.getElementById("calls").addEventListener("click", function (e) {
    var b = e.target.closest("button.play");
    if (!b) return;
    var cells = b.closest("tr").querySelectorAll("td");
    title.textContent = cells[1].textContent + ", " + cells[0].textContent;
    meta.textContent = "Recording " + b.dataset.sid;
    frame.hidden = false;
    frame.src = "/recordings/" + b.dataset.sid + "/player?autoplay=1";
    frame.focus();
  });

  window.addEventListener("message", function (e) {
    if (e.origin !== window.location.origin || !e.data || e.data.source !== "playback-gateway") return;
    var d = e.data;
    meta.textContent = d.type === "error"
      ? "Cannot play (" + d.verdict + "): the reason is shown below."
      : (words[d.type] || d.type) + " · recording " + d.recording_sid;
  });
})();
