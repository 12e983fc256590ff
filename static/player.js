// The embeddable player: custom controls over an <audio> element, keyboard
// shortcuts, and the gateway's explanation in place of the player when a
// recording cannot be played. Tells the embedding page what happens with
// postMessage: {source: "playback-gateway", type, recording_sid, ...}.
(function () {
  "use strict";
  var root = document.getElementById("player-root");
  var sid = root.dataset.sid;

  // Events go only to the origins allowed to frame the player (the
  // gateway's own and the configured CRMs, as in CSP frame-ancestors),
  // never to any origin: a page that frames it some other way learns nothing.
  var allowed = (root.dataset.embedders || "").split(" ").filter(Boolean);
  allowed.push(window.location.origin);
  function parentOrigin() {
    var a = window.location.ancestorOrigins;
    if (a && a.length) return a[0];
    try { return new URL(document.referrer).origin; } catch (e) { return null; }
  }
  var known = parentOrigin();
  var targets = known === null ? allowed : allowed.filter(function (o) { return o === known; });

  function tell(type, extra) {
    if (window.parent === window) return;
    var msg = { source: "playback-gateway", type: type, recording_sid: sid };
    for (var k in extra || {}) msg[k] = extra[k];
    // The browser delivers a message only if the parent is that origin.
    targets.forEach(function (o) { window.parent.postMessage(msg, o); });
  }

  if (root.dataset.verdict !== "available") {
    tell("error", { verdict: root.dataset.verdict });
    return;
  }

  var audio = document.getElementById("audio");
  var play = document.getElementById("play");
  var seek = document.getElementById("seek");
  var current = document.getElementById("current");
  var total = document.getElementById("duration");
  var speed = document.getElementById("speed");
  var volume = document.getElementById("volume");
  var mute = document.getElementById("mute");
  var status = document.getElementById("status");
  var seeking = false;

  function clock(s) {
    if (!isFinite(s)) return "0:00";
    s = Math.floor(s);
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }
  function duration() { return isFinite(audio.duration) ? audio.duration : 0; }
  function render() {
    current.textContent = clock(audio.currentTime);
    total.textContent = clock(duration());
    if (!seeking && duration()) seek.value = String(Math.round(audio.currentTime / duration() * 1000));
    seek.setAttribute("aria-valuetext", clock(audio.currentTime) + " of " + clock(duration()));
    var playing = !audio.paused && !audio.ended;
    play.setAttribute("aria-label", playing ? "Pause" : "Play");
    play.title = playing ? "Pause (Space or K)" : "Play (Space or K)";
    play.firstElementChild.textContent = playing ? "❚❚" : "▶";
    mute.textContent = audio.muted ? "Unmute" : "Mute";
    mute.setAttribute("aria-label", audio.muted ? "Unmute" : "Mute");
  }
  function toggle() {
    if (audio.paused || audio.ended) {
      audio.play().catch(function () { status.textContent = "Press play to start."; });
    } else {
      audio.pause();
    }
  }
  function jump(to) {
    var d = duration();
    audio.currentTime = Math.max(0, d ? Math.min(d, to) : to);
    render();
  }
  function setSpeed(i) {
    var opts = Array.prototype.map.call(speed.options, function (o) { return o.value; });
    var at = Math.max(0, Math.min(opts.length - 1, opts.indexOf(speed.value) + i));
    speed.value = opts[at];
    audio.playbackRate = Number(speed.value);
    status.textContent = "Speed " + speed.value + "×";
  }

  play.addEventListener("click", toggle);
  document.getElementById("back").addEventListener("click", function () { jump(audio.currentTime - 10); });
  document.getElementById("fwd").addEventListener("click", function () { jump(audio.currentTime + 10); });
  seek.addEventListener("input", function () { seeking = true; current.textContent = clock(seek.value / 1000 * duration()); });
  seek.addEventListener("change", function () { seeking = false; jump(seek.value / 1000 * duration()); });
  speed.addEventListener("change", function () { audio.playbackRate = Number(speed.value); });
  volume.addEventListener("input", function () { audio.volume = Number(volume.value); audio.muted = false; render(); });
  mute.addEventListener("click", function () { audio.muted = !audio.muted; render(); });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target.tagName;
    var inControl = t === "SELECT" || (t === "INPUT" && e.target.type !== "range");
    if (inControl) return;
    var k = e.key;
    if (k === " " || k === "k" || k === "K") { if (t === "BUTTON" && k === " ") return; toggle(); }
    else if (k === "ArrowLeft" || k === "j" || k === "J") jump(audio.currentTime - 10);
    else if (k === "ArrowRight" || k === "l" || k === "L") jump(audio.currentTime + 10);
    else if (k === "ArrowUp") { audio.volume = Math.min(1, audio.volume + 0.1); volume.value = audio.volume; }
    else if (k === "ArrowDown") { audio.volume = Math.max(0, audio.volume - 0.1); volume.value = audio.volume; }
    else if (k === "m" || k === "M") audio.muted = !audio.muted;
    else if (k === "Home") jump(0);
    else if (k === "End") jump(duration());
    else if (k === ">" ) setSpeed(1);
    else if (k === "<") setSpeed(-1);
    else if (/^[0-9]$/.test(k)) jump(duration() * Number(k) / 10);
    else return;
    e.preventDefault();
    render();
  });

  ["timeupdate", "durationchange", "loadedmetadata", "volumechange", "ratechange"].forEach(function (ev) {
    audio.addEventListener(ev, render);
  });
  audio.addEventListener("play", function () { status.textContent = "Playing"; render(); tell("play", { time: audio.currentTime }); });
  audio.addEventListener("pause", function () { if (!audio.ended) { status.textContent = "Paused"; tell("pause", { time: audio.currentTime }); } render(); });
  audio.addEventListener("ended", function () { status.textContent = "Finished"; render(); tell("ended", {}); });
  audio.addEventListener("waiting", function () { status.textContent = "Loading…"; });
  audio.addEventListener("playing", function () { status.textContent = "Playing"; });

  // The element cannot show why the audio failed: ask the status API and
  // show its explanation in place of the player.
  audio.addEventListener("error", function () {
    var link = root.dataset.link ? "?" + root.dataset.link : "";
    fetch("/recordings/" + sid + ".json" + link, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) { showExplanation(s.availability || s); })
      .catch(function () {
        showExplanation({ verdict: "storage_unavailable", title: "The recording could not be loaded",
          detail: "The gateway could not be reached. Nothing is lost; try again in a few seconds." });
      });
  });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }
  function showExplanation(a) {
    var slot = document.getElementById("explanation-slot");
    var box = el("section", "explanation verdict-" + a.verdict);
    var badge = el("p", "badge badge-" + a.verdict);
    badge.append(el("span", "dot"), document.createTextNode(a.title));
    box.append(badge, el("h2", null, a.title), el("p", "detail", a.detail || ""));
    if (a.incident) {
      var w = a.incident.window, dl = el("dl", "window");
      dl.append(el("dt", null, "Window (" + a.incident.time_zone + ")"), el("dd", null, w.local),
        el("dt", null, "Window (UTC)"), el("dd", null, w.utc));
      var dd = el("dd", "localtime", w.utc);
      dd.dataset.start = w.start; dd.dataset.end = w.end;
      if (window.playbackGatewayLocalTime) window.playbackGatewayLocalTime(dd);
      dl.append(el("dt", null, "Window (your time zone)"), dd);
      box.append(dl);
    }
    if (a.what_to_do) {
      var todo = el("div", "todo");
      todo.append(el("h3", null, "What to do"), el("p", null, a.what_to_do));
      box.append(todo);
    }
    if (a.incident) {
      var link = el("a", "incident-link", "Incident " + a.incident.id + ": the full account");
      link.href = a.incident.href; link.target = "_top";
      box.append(link);
    }
    slot.replaceChildren(box);
    slot.hidden = false;
    document.querySelector(".player").hidden = true;
    tell("error", { verdict: a.verdict });
  }

  render();
  tell("ready", {});
  if (root.dataset.autoplay === "true") toggle();
})();
