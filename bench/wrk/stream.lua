-- wrk script: a streaming OpenAI chat completion request (SSE, with a final usage chunk).
-- wrk reads each chunked response to its end; streams/s x events per stream = chunks/s.
-- The model and key can be overridden from the environment (bench/run.py sets them);
-- BENCH_HEADERS adds headers, one "Name: value" a line (bench/peers.py: Portkey's routing headers).
local model = os.getenv("BENCH_MODEL") or "mock/bench-model"
local key = os.getenv("BENCH_KEY") or "bench-master-key"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "text/event-stream"
wrk.headers["Authorization"] = "Bearer " .. key
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end
wrk.body = '{"model":"' .. model .. '","messages":['
  .. '{"role":"system","content":"You are a helpful assistant."},'
  .. '{"role":"user","content":"In two sentences, what does an LLM gateway do?"}'
  .. '],"max_tokens":128,"temperature":0.2,"stream":true,"stream_options":{"include_usage":true}}'
