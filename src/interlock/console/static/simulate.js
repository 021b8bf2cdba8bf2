// interlock console: the model page's "Test with the simulator" box.
// POSTs the box as JSON to /console/simulate and reads the event stream it answers with
// (data: {"type": "delta" | "tool_call" | "done" | "error", ...}). Model output is only ever
// set as textContent, never parsed as HTML.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("sim-form");
  if (!form || !window.fetch || !window.TextDecoder) { return; }
  form.hidden = false;
  var $ = function (id) { return document.getElementById(id); };
  var status = $("sim-status");
  var run = $("sim-run");

  function toggle(box, check) {
    $(box).hidden = !$(check).checked;
    $(check).addEventListener("change", function () { $(box).hidden = !$(check).checked; });
  }
  toggle("sim-tool-box", "sim-tool-on");
  toggle("sim-schema-box", "sim-schema-on");

  function parsed(id, label) {
    try {
      return JSON.parse($(id).value);
    } catch (err) {
      throw new Error(label + " is not valid JSON: " + err.message);
    }
  }

  function reset() {
    $("sim-result").hidden = false;
    $("sim-answer-box").hidden = false;
    $("sim-answer").textContent = "";
    $("sim-calls").hidden = true;
    $("sim-calls-text").textContent = "";
    $("sim-figures").hidden = true;
    $("sim-costs-wrap").hidden = true;
    $("sim-costs").textContent = "";
  }

  function done(ev) {
    $("sim-in").textContent = ev.input_tokens.toLocaleString("en-US");
    $("sim-out").textContent = ev.output_tokens.toLocaleString("en-US");
    $("sim-ttft-label").textContent = ev.streamed ? "Simulated TTFT" : "Simulated latency (not streamed)";
    $("sim-ttft").textContent = ev.ttft_ms.toLocaleString("en-US") + " ms";
    $("sim-tps").textContent = ev.tokens_per_s === null ? "—" : ev.tokens_per_s + " tok/s";
    $("sim-figures").hidden = false;
    var body = $("sim-costs");
    ev.costs.forEach(function (c) {
      var tr = document.createElement("tr");
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = c.vendor;
      var td = document.createElement("td");
      td.className = "num";
      td.textContent = "$" + c.usd;
      tr.appendChild(th);
      tr.appendChild(td);
      body.appendChild(tr);
    });
    $("sim-costs-wrap").hidden = ev.costs.length === 0;
    // An answer that is only a tool call has no text to show.
    $("sim-answer-box").hidden = $("sim-answer").textContent === "" && !$("sim-calls").hidden;
    status.textContent = "Done" + (ev.finish_reason ? " (" + ev.finish_reason + ")" : "") + ".";
  }

  function handle(ev) {
    if (ev.type === "delta") {
      $("sim-answer").textContent += ev.text;
    } else if (ev.type === "tool_call") {
      $("sim-calls").hidden = false;
      $("sim-calls-text").textContent += ev.name + "(" + ev.arguments + ")\n";
    } else if (ev.type === "done") {
      done(ev);
    } else if (ev.type === "error") {
      status.textContent = "Error: " + ev.message;
    }
  }

  async function submit() {
    var body = {model: form.getAttribute("data-model"), prompt: $("sim-prompt").value,
                stream: $("sim-stream").checked};
    if ($("sim-tool-on").checked) { body.tool = parsed("sim-tool", "The tool"); }
    if ($("sim-schema-on").checked) { body.schema = parsed("sim-schema", "The schema"); }
    reset();
    status.textContent = "Running…";
    var resp = await fetch("/console/simulate", {
      method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body),
      credentials: "same-origin"
    });
    if (!resp.ok) {
      var err = await resp.json().catch(function () { return null; });
      var e = err && err.error ? err.error : {message: resp.statusText};
      throw new Error(e.message + (e.param ? " (" + e.param + ")" : ""));
    }
    var reader = resp.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) { break; }
      buffer += decoder.decode(chunk.value, {stream: true});
      var end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        var frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (frame.indexOf("data: ") === 0) { handle(JSON.parse(frame.slice(6))); }
      }
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    run.disabled = true;
    submit().catch(function (err) {
      status.textContent = "Error: " + err.message;
    }).finally(function () { run.disabled = false; });
  });
});
