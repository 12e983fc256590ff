// The demo CRM: plays a call's recording, or shows why it cannot be played.
// Media elements cannot show an error body, so the page asks the status API.
(function () {
  "use strict";
  var player = document.getElementById("player");
  var title = document.getElementById("np-title");
  var meta = document.getElementById("np-meta");
  var box = document.getElementById("np-explanation");
  var current = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  function explain(a, sid) {
    box.replaceChildren();
    var badge = el("p", "badge badge-" + a.verdict);
    badge.append(el("span", "dot"), document.createTextNode(a.title));
    box.append(badge, el("p", "detail", a.detail));
    if (a.incident) {
      var w = a.incident.window;
      var dl = el("dl", "window");
      dl.append(el("dt", null, "Window (" + a.incident.time_zone + ")"), el("dd", null, w.local),
        el("dt", null, "Window (UTC)"), el("dd", null, w.utc));
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) {
        var f = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
        dl.append(el("dt", null, "Window (" + zone + ")"),
          el("dd", null, f.format(new Date(w.start)) + "–" + f.format(new Date(w.end))));
      }
      box.append(dl);
    }
    (a.notes || []).forEach(function (n) { box.append(el("p", "meta", n)); });
    if (a.what_to_do) {
      var todo = el("div", "todo");
      todo.append(el("h3", null, "What to do"), el("p", null, a.what_to_do));
      box.append(todo);
    }
    if (a.incident) {
      var link = el("a", "incident-link", "Incident " + a.incident.id + ": the full account");
      link.href = a.incident.href;
      box.append(link);
    }
    var more = el("a", "meta", " Recording details");
    more.href = "/recordings/" + sid;
    box.append(el("br"), more);
    box.hidden = false;
    player.hidden = true;
  }

  function play(sid, row) {
    current = sid;
    var cells = row.querySelectorAll("td");
    title.textContent = cells[1].textContent + ", " + cells[0].textContent;
    meta.textContent = "Recording " + sid;
    box.hidden = true;
    fetch("/recordings/" + sid + ".json", { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (current !== sid) return;
        var a = s.availability || s;
        if (a.playable) {
          player.hidden = false;
          player.src = "/recordings/" + sid + ".mp3";
          player.play().catch(function () { /* autoplay refused: controls remain */ });
        } else {
          player.removeAttribute("src");
          explain(a, sid);
        }
      })
      .catch(function () {
        explain({ verdict: "storage_unavailable", title: "The gateway could not be reached",
          detail: "Nothing is lost; try again in a few seconds." }, sid);
      });
  }

  player.addEventListener("error", function () {
    if (current && player.getAttribute("src")) {
      var sid = current;
      fetch("/recordings/" + sid + ".json").then(function (r) { return r.json(); })
        .then(function (s) { explain(s.availability || s, sid); });
    }
  });

  document.getElementById("calls").addEventListener("click", function (e) {
    var b = e.target.closest("button.play");
    if (b) play(b.dataset.sid, b.closest("tr"));
  });
})();
