-- Authorization-code redemption: every request redeems the next code of BENCH_TOKENS, each code
-- once. The harness makes the codes through Latchkey's authorization endpoint just before the run,
-- more than the run can redeem at the last rate seen. If they run out anyway, the requests that
-- follow send no code (they fail) and done() reports them, so the run counts as an error rather
-- than as a rate. Needs one wrk thread (-t1): one list.
--   BENCH_TOKENS   file of codes, one per line
--   BENCH_BODY     the token request's form without the code (grant type, redirect URI, PKCE verifier)
--   BENCH_HEADERS  header lines (client authentication)
local codes = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if line ~= "" then codes[#codes + 1] = line end
end
local next_code = 1
local form = os.getenv("BENCH_BODY") or ""

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

local function form_encode(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

starved = 0

request = function()
  local code = codes[next_code]
  if code == nil then
    starved = starved + 1
    code = "none-left"
  else
    next_code = next_code + 1
  end
  return wrk.format(nil, nil, nil, form .. "&code=" .. form_encode(code))
end

local reported = false

response = function(status, headers, body)
  if status ~= 200 and not reported then
    -- The first failure, for the log.
    reported = true
    io.write(string.format("First failed redemption: HTTP %d %s\n", status, body:gsub("%s+", " ")))
  end
end

local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("starved") or 0)
  end
  io.write(string.format("Requests without a code: %d\n", total))
end
