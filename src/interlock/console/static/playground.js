// interlock console playground: runs one prompt against up to four models in parallel.
// Each run is POST /console/api/chat (the session cookie and X-CSRF-Token), an ordinary gateway chat request.
// Model output is only ever set as textContent, never parsed as HTML.
"use strict";
(function () {
  var form = document.getElementById("pg-form");
  if (!form) { return; }
  var csrf = form.getAttribute("data-csrf") || "";
  var results = document.getElementById("pg-results");
  var errors = document.getElementById("pg-errors");
  var format = document.getElementById("pg-format");
  var schemaField = document.getElementById("pg-schema-field");

  function value(id) { return document.getElementById(id).value; }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function parseJSON(text, name) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new Error("'" + name + "' is not valid JSON: " + err.message);
    }
  }

  // The chat request shared by every model (the model name is set per column); throws naming the bad field.
  function baseRequest() {
    var req = { messages: [] };
    var system = value("pg-system").trim();
    if (system) { req.messages.push({ role: "system", content: system }); }
    var prompt = value("pg-prompt").trim();
    if (!prompt) { throw new Error("'prompt' is empty: write a prompt."); }
    req.messages.push({ role: "user", content: prompt });
    var temperature = value("pg-temperature").trim();
    if (temperature) {
      var t = Number(temperature);
      if (!isFinite(t) || t < 0 || t > 2) { throw new Error("'temperature' must be a number from 0 to 2."); }
      req.temperature = t;
    }
    var maxTokens = value("pg-max-tokens").trim();
    if (maxTokens) {
      var m = Number(maxTokens);
      if (!Number.isInteger(m) || m < 1) { throw new Error("'max tokens' must be a whole number of at least 1."); }
      req.max_tokens = m;
    }
    var tools = value("pg-tools").trim();
    if (tools) {
      var parsed = parseJSON(tools, "tools");
      if (!Array.isArray(parsed)) { throw new Error("'tools' must be a JSON array of tool definitions."); }
      req.tools = parsed;
    }
    if (format.value === "json_object") {
      req.response_format = { type: "json_object" };
    } else if (format.value === "json_schema") {
      var schema = parseJSON(value("pg-schema").trim() || "{}", "schema");
      if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
        throw new Error("'schema' must be a JSON object (a JSON Schema).");
      }
      req.response_format = { type: "json_schema", json_schema: { name: "answer", schema: schema } };
    }
    if (document.getElementById("pg-stream").checked) {
      req.stream = true;
      req.stream_options = { include_usage: true };
    }
    return req;
  }

  function models() {
    var names = [];
    form.querySelectorAll("input[name=model]").forEach(function (input) {
      var name = input.value.trim();
      if (name) { names.push(name); }
    });
    return names;
  }

  function usd(amount) {
    if (amount === null || amount === undefined || amount === "") { return "—"; }
    var n = Number(amount);
    return isFinite(n) ? "$" + n.toFixed(6) : String(amount);
  }

  function Column(model) {
    this.root = el("article", "pg-col");
    this.root.setAttribute("data-model", model);
    this.root.appendChild(el("h2", "", model));
    this.answer = el("div", "pg-answer");
    this.answer.setAttribute("aria-label", "Answer from " + model);
    this.root.appendChild(this.answer);
    this.figures = el("dl", "pg-figures");
    this.root.appendChild(this.figures);
    this.fields = {};
    var self = this;
    ["Status", "Cost", "Tokens", "TTFT", "Tokens/s", "Served by", "Routing"].forEach(function (label) {
      self.figures.appendChild(el("dt", "", label));
      var dd = el("dd", "", "—");
      dd.setAttribute("data-field", label.toLowerCase());
      self.figures.appendChild(dd);
      self.fields[label] = dd;
    });
    this.fields.Status.textContent = "running…";
  }
  Column.prototype.set = function (label, text) { this.fields[label].textContent = text; };
  Column.prototype.fail = function (message) {
    this.set("Status", "failed");
    var p = el("p", "pg-error", message);
    this.root.insertBefore(p, this.figures);
  };

  function routing(col, res) {
    var vendor = res.headers.get("x-interlock-vendor");
    var model = res.headers.get("x-interlock-model");
    if (vendor) { col.set("Served by", vendor + (model ? " · " + model : "")); }
    var reason = res.headers.get("x-interlock-route-reason");
    if (reason) { col.set("Routing", reason); }
  }

  // The routing record of the finished request (the explanation and, if the answer had none, the cost).
  function explain(col, rid, attempt) {
    if (!rid) { return; }
    fetch("/console/api/generation?id=" + encodeURIComponent(rid), { credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 404 && attempt < 3) {
          setTimeout(function () { explain(col, rid, attempt + 1); }, 300);
          return null;
        }
        return res.ok ? res.json() : null;
      })
      .then(function (body) {
        if (!body || !body.data) { return; }
        var g = body.data;
        var r = g.routing || {};
        var parts = [];
        if (r.policy) { parts.push("policy " + r.policy); }
        if (r.strategy) { parts.push(r.strategy); }
        if (r.reason) { parts.push(r.reason); }
        if (r.order && r.order.length) { parts.push("order: " + r.order.join(", ")); }
        if (g.provider_responses && g.provider_responses.length > 1) {
          parts.push(g.provider_responses.length + " attempts");
        }
        if (parts.length) { col.set("Routing", parts.join(" · ")); }
        if (col.fields.Cost.textContent === "—" && g.total_cost !== null) { col.set("Cost", usd(g.total_cost)); }
      })
      .catch(function () { /* the explanation is optional: the answer is already shown */ });
  }

  function finish(col, usage, started, firstAt, endedAt, headerCost) {
    var cost = headerCost;
    if (usage) {
      col.set("Tokens", (usage.prompt_tokens || 0) + " in · " + (usage.completion_tokens || 0) + " out");
      if (usage.cost !== undefined && usage.cost !== null) { cost = usage.cost; }
      // Generation speed: first token to last; an answer that arrived in one burst is timed from the request.
      var span = (endedAt - (firstAt || started)) / 1000;
      if (span < 0.01) { span = (endedAt - started) / 1000; }
      if (usage.completion_tokens && span > 0) {
        col.set("Tokens/s", (usage.completion_tokens / span).toFixed(0));
      }
    }
    col.set("Cost", usd(cost));
    col.set("TTFT", firstAt ? Math.round(firstAt - started) + " ms" : "—");
    col.set("Status", "done");
  }

  function errorText(body, status) {
    if (body && body.error && body.error.message) {
      return status + ": " + body.error.message + (body.error.param ? " (param: " + body.error.param + ")" : "");
    }
    return "HTTP " + status;
  }

  function readStream(col, res, started) {
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var firstAt = null;
    var usage = null;
    function handle(event) {
      event.split("\n").forEach(function (line) {
        if (line.indexOf("data:") !== 0) { return; }
        var data = line.slice(5).trim();
        if (!data || data === "[DONE]") { return; }
        var chunk = JSON.parse(data);
        if (chunk.error) { col.fail(chunk.error.message || "stream error"); return; }
        if (chunk.usage) { usage = chunk.usage; }
        (chunk.choices || []).forEach(function (choice) {
          var delta = choice.delta || {};
          var piece = delta.content || "";
          if (delta.tool_calls) { piece += JSON.stringify(delta.tool_calls); }
          if (piece) {
            if (firstAt === null) { firstAt = performance.now(); }
            col.answer.textContent += piece;
          }
        });
      });
    }
    function pump() {
      return reader.read().then(function (step) {
        if (step.done) {
          if (buffer.trim()) { handle(buffer); }
          finish(col, usage, started, firstAt, performance.now(), null);
          return;
        }
        buffer += decoder.decode(step.value, { stream: true });
        var cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          handle(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  function run(model, request) {
    var col = new Column(model);
    results.appendChild(col.root);
    var body = Object.assign({ model: model }, request);
    var started = performance.now();
    return fetch("/console/api/chat", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body)
    }).then(function (res) {
      routing(col, res);
      var rid = res.headers.get("x-interlock-request-id");
      if (!res.ok) {
        return res.json().catch(function () { return null; }).then(function (err) {
          col.fail(errorText(err, res.status));
          explain(col, rid, 0);
        });
      }
      if (body.stream) {
        return readStream(col, res, started).then(function () { explain(col, rid, 0); });
      }
      return res.json().then(function (data) {
        var ended = performance.now();
        var message = (data.choices && data.choices[0] && data.choices[0].message) || {};
        var text = message.content || "";
        if (message.tool_calls) { text += (text ? "\n" : "") + JSON.stringify(message.tool_calls, null, 2); }
        col.answer.textContent = text;
        // Not streamed: the first byte is the whole answer, so TTFT is the full latency.
        finish(col, data.usage, started, ended, ended, res.headers.get("x-interlock-cost-usd"));
        explain(col, rid, 0);
      });
    }).catch(function (err) {
      col.fail("The request failed: " + err.message);
    });
  }

  // "View code": the exact request as curl and as Python with the openai SDK (the key stays a placeholder).
  function showCode(request, names) {
    var base = location.origin;
    var body = Object.assign({ model: names[0] || "MODEL" }, request);
    var json = JSON.stringify(body, null, 2);
    document.getElementById("pg-curl").textContent =
      "curl " + base + "/v1/chat/completions \\\n" +
      "  -H \"Authorization: Bearer $INTERLOCK_API_KEY\" \\\n" +
      "  -H \"Content-Type: application/json\" \\\n" +
      "  -d '" + json.replace(/'/g, "'\\''") + "'";
    var args = Object.keys(body).map(function (k) {
      return "    " + k + "=" + pyValue(body[k], "    ") + ",";
    }).join("\n");
    var py = "import os\nfrom openai import OpenAI\n\n" +
      "client = OpenAI(base_url=\"" + base + "/v1\", api_key=os.environ[\"INTERLOCK_API_KEY\"])\n" +
      "response = client.chat.completions.create(\n" + args + "\n)\n";
    py += body.stream ? "for chunk in response:\n    print(chunk)\n" : "print(response.choices[0].message.content)\n";
    document.getElementById("pg-python").textContent = py;
    document.getElementById("pg-code").hidden = false;
  }

  // A JSON value as a Python literal (JSON strings and numbers are valid Python; true/false/null are not).
  function pyValue(v, indent) {
    if (v === true) { return "True"; }
    if (v === false) { return "False"; }
    if (v === null || v === undefined) { return "None"; }
    var inner = indent + "    ";
    if (Array.isArray(v)) {
      if (!v.length) { return "[]"; }
      return "[\n" + v.map(function (x) { return inner + pyValue(x, inner); }).join(",\n") + ",\n" + indent + "]";
    }
    if (typeof v === "object") {
      var keys = Object.keys(v);
      if (!keys.length) { return "{}"; }
      return "{\n" + keys.map(function (k) {
        return inner + JSON.stringify(k) + ": " + pyValue(v[k], inner);
      }).join(",\n") + ",\n" + indent + "}";
    }
    return JSON.stringify(v);
  }

  format.addEventListener("change", function () { schemaField.hidden = format.value !== "json_schema"; });

  document.getElementById("pg-show-code").addEventListener("click", function () {
    errors.textContent = "";
    try {
      showCode(baseRequest(), models());
    } catch (err) {
      errors.textContent = err.message;
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errors.textContent = "";
    var names = models();
    var request;
    try {
      if (!names.length) { throw new Error("Name at least one model."); }
      request = baseRequest();
    } catch (err) {
      errors.textContent = err.message;
      return;
    }
    results.textContent = "";
    var button = document.getElementById("pg-run");
    button.disabled = true;
    Promise.all(names.map(function (name) { return run(name, request); })).then(function () {
      button.disabled = false;
      results.setAttribute("data-done", String(names.length));
    });
    showCode(request, names);
  });
}());
