// interlock console: the request log's live tail (progressive enhancement; the page works without it).
// "Follow live" opens one server-sent event stream (/console/requests/tail) and puts each new request on top.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("tail-toggle");
  var rows = document.getElementById("request-rows");
  var status = document.getElementById("tail-status");
  if (!button || !rows || !window.EventSource) { return; }
  var admin = button.getAttribute("data-admin") === "1";
  var since = button.getAttribute("data-since");
  var source = null;
  var added = 0;
  var MAX_ROWS = 200;
  button.hidden = false;

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    td.textContent = text;
    return td;
  }

  function row(r) {
    var tr = document.createElement("tr");
    tr.className = "fresh";
    var first = document.createElement("td");
    var link = document.createElement("a");
    link.href = "/console/requests/" + encodeURIComponent(r.id);
    link.textContent = r.when;
    var id = document.createElement("span");
    id.className = "id";
    id.textContent = r.id;
    first.appendChild(link);
    first.appendChild(id);
    tr.appendChild(first);
    if (admin) { tr.appendChild(cell(r.project)); }
    var model = cell(r.model);
    (r.tags || []).forEach(function (t) {
      var tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = t;
      model.appendChild(document.createTextNode(" "));
      model.appendChild(tag);
    });
    tr.appendChild(model);
    tr.appendChild(cell(r.vendor));
    var st = document.createElement("td");
    var mark = document.createElement("span");
    mark.className = "status " + (r.ok ? "ok" : "bad");
    mark.textContent = r.status + (r.ok ? "" : " \u2715");
    st.appendChild(mark);
    tr.appendChild(st);
    tr.appendChild(cell(r.duration, "num"));
    tr.appendChild(cell(r.ttft, "num"));
    tr.appendChild(cell(r.tokens, "num"));
    tr.appendChild(cell(r.cost + (r.estimated ? " est." : ""), "num"));
    tr.appendChild(cell(r.cache));
    tr.appendChild(cell(r.guardrails));
    return tr;
  }

  function stop(note) {
    if (source) { source.close(); source = null; }
    button.textContent = "Follow live";
    button.setAttribute("aria-pressed", "false");
    status.textContent = note;
  }

  function start() {
    source = new EventSource("/console/requests/tail?since=" + encodeURIComponent(since));
    button.textContent = "Pause";
    button.setAttribute("aria-pressed", "true");
    status.textContent = "Following: new requests appear on top.";
    source.addEventListener("request", function (event) {
      var r = JSON.parse(event.data);
      if (r.received_at > since) { since = r.received_at; }
      rows.insertBefore(row(r), rows.firstChild);
      while (rows.children.length > MAX_ROWS) { rows.removeChild(rows.lastChild); }
      added += 1;
      status.textContent = "Following: " + added + " new request" + (added === 1 ? "" : "s") + ".";
    });
    source.addEventListener("end", function () { stop("The session ended; sign in again to follow."); });
  }

  button.addEventListener("click", function () {
    if (source) { stop("Paused."); } else { start(); }
  });
});
