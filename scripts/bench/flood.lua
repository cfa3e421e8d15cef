-- wrk script: every request an exchange with a well-formed but wrong secret, for the known
-- clientId or an unknown one, from the bodies that client.py prepared (one JSON per line).
-- Counts answers by status class; done() prints them as one line for client.py to read.
local bodies = {}
counts = {}  -- global: done() reads each thread's copy
local index = 0

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  index = math.random(#bodies)
  counts = { ["2xx"] = 0, ["4xx"] = 0, ["429"] = 0, ["5xx"] = 0 }
end

function request()
  index = index % #bodies + 1
  return wrk.format("POST", "/identity/resources/auth/v1/api-token",
    { ["Content-Type"] = "application/json" }, bodies[index])
end

function response(status, headers, body)
  if status == 429 then
    counts["429"] = counts["429"] + 1
  elseif status >= 500 then
    counts["5xx"] = counts["5xx"] + 1
  elseif status >= 400 then
    counts["4xx"] = counts["4xx"] + 1
  else
    counts["2xx"] = counts["2xx"] + 1
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local total = { ["2xx"] = 0, ["4xx"] = 0, ["429"] = 0, ["5xx"] = 0 }
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for k, v in pairs(c) do
      total[k] = total[k] + v
    end
  end
  io.write(string.format(
    "FLOOD requests=%d seconds=%.1f p50_ms=%.2f s2xx=%d s4xx=%d s429=%d s5xx=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    total["2xx"], total["4xx"], total["429"], total["5xx"],
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
