-- wrk script for every run of the benchmark: wrk ... -s requests.lua URL -- METHOD PATH BODIES [HEADER ...]
-- Each request is METHOD PATH with the next line of the file BODIES as its JSON body ("-" for
-- none) and the given "Name: value" headers. Counts answers by status class; done() prints one
-- line (RESULT key=value ...) for client.py to read.
local method, path
local bodies = {}
local headers = {}
local index = 0
counts = {}  -- global: done() reads each thread's copy

function init(args)
  method, path = args[1], args[2]
  if args[3] ~= "-" then
    for line in io.lines(args[3]) do
      bodies[#bodies + 1] = line
    end
    headers["Content-Type"] = "application/json"
    -- Each thread starts at its own place, so threads do not send the same bodies together.
    index = math.floor(#bodies * (tonumber(id) or 0) / 2)
  end
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  counts = { s2xx = 0, s4xx = 0, s429 = 0, s5xx = 0 }
end

function request()
  local body = nil
  if #bodies > 0 then
    index = index % #bodies + 1
    body = bodies[index]
  end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  if status == 429 then
    counts.s429 = counts.s429 + 1
  elseif status >= 500 then
    counts.s5xx = counts.s5xx + 1
  elseif status >= 400 then
    counts.s4xx = counts.s4xx + 1
  else
    counts.s2xx = counts.s2xx + 1
  end
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local total = { s2xx = 0, s4xx = 0, s429 = 0, s5xx = 0 }
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("counts")) do
      total[k] = total[k] + v
    end
  end
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f s2xx=%d s4xx=%d s429=%d s5xx=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, total.s2xx, total.s4xx, total.s429, total.s5xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
