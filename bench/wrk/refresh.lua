-- The refresh-token grant with rotation: every refresh token is used exactly once. The harness
-- writes one starting refresh token per connection to BENCH_TOKENS (a file, one per line); each
-- answer's new refresh token goes back in the queue for the next request, so every request
-- redeems a token that has never been used. Needs one wrk thread (-t1): one queue.
--   BENCH_TOKENS   file of starting refresh tokens
--   BENCH_HEADERS  header lines (client authentication, content type)
local queue = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if line ~= "" then table.insert(queue, line) end
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

starved = 0

request = function()
  local token = table.remove(queue)
  if token == nil then
    -- A chain broke (an error answer carries no new token): count it, send a request that fails.
    starved = starved + 1
    token = "exhausted"
  end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

local reported = false

response = function(status, headers, body)
  local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    table.insert(queue, token)
  elseif not reported then
    -- The first failure, for the log; the rest are usually the chains it broke.
    reported = true
    io.write(string.format("First failed refresh: HTTP %d %s\n", status, body:gsub("%s+", " ")))
  end
end

-- Reports chains that broke, so an error is told apart from a harness mistake.
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("starved") or 0)
  end
  io.write(string.format("Broken refresh chains: %d\n", total))
end
