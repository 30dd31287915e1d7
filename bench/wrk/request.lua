-- One fixed request, described by the environment (the harness sets these):
--   BENCH_METHOD   GET or POST
--   BENCH_BODY     the request body, if any
--   BENCH_HEADERS  header lines "Name: value", separated by newlines
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
end
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then
    wrk.headers[name] = value
  end
end
