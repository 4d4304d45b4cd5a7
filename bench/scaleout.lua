-- wrk script for bench/scaleout.py: a mixed read/write load spread over several servers.
--   PORTS   comma-separated ports on 127.0.0.1; wrk thread i goes to PORTS[i % #PORTS + 1]
--           (a round-robin load balancer: each server gets the same share of connections)
--   TOKEN   a bearer token (intake clerk: may register, classify and read everything)
--   IDS     a file of case ids (one a line) to read
-- The mix, one slot = 5 % of requests (MIX below): 10 % registrations, 5 % classify (a case
-- this thread registered; a case read while none is waiting), 25 % the board, 25 % the
-- ledger, 25 % case reads and histories, 10 % scores.
local MIX = {
  "register", "register", "classify",
  "board", "board", "board", "board", "board_by",
  "ledger", "ledger", "ledger", "ledger", "ledger_filter",
  "case", "case", "case", "case", "history",
  "scores", "scores",
}
local GRIDS = {"35010500100101", "35010500200101", "35010510100101", "35010510200101"}
local BODY = '{"channel":"hotline","category":"housing","title":"楼顶渗水",' ..
  '"description":"业主违章搭建导致居民住宅楼顶渗水，雨天屋内漏水严重。","location":"马限社区3栋",' ..
  '"grid":"%s","petitioner_name":"张秀英","petitioner_phone":"13812341234"}'

local threads = {}
function setup(thread)
  local ports = {}
  for p in string.gmatch(os.getenv("PORTS"), "%d+") do table.insert(ports, p) end
  local port = ports[(#threads % #ports) + 1]
  thread.addr = wrk.lookup("127.0.0.1", port)[1]
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local ids, waiting = {}, {}
local counter = 0
local tok = os.getenv("TOKEN")
local headers = {["Authorization"] = "Bearer " .. tok, ["Content-Type"] = "application/json"}

function init(args)
  for line in io.lines(os.getenv("IDS")) do table.insert(ids, line) end
  counter = tid * 7  -- threads start at different points of the mix and of the ids
end

local function some_case()
  return ids[(counter * 13) % #ids + 1]
end

request = function()
  counter = counter + 1
  local kind = MIX[(counter % #MIX) + 1]
  if kind == "classify" and #waiting == 0 then kind = "case" end
  if kind == "register" then
    return wrk.format("POST", "/cases", headers, string.format(BODY, GRIDS[(counter % #GRIDS) + 1]))
  elseif kind == "classify" then
    local id = table.remove(waiting, 1)
    return wrk.format("POST", "/cases/" .. id .. "/classify", headers, '{"handling_type":"committed","tier":"small"}')
  elseif kind == "board" then
    return wrk.format("GET", "/board", headers)
  elseif kind == "board_by" then
    return wrk.format("GET", "/board?by=street", headers)
  elseif kind == "ledger" then
    return wrk.format("GET", "/ledger", headers)
  elseif kind == "ledger_filter" then
    return wrk.format("GET", "/ledger?status=closed&category=housing", headers)
  elseif kind == "case" then
    return wrk.format("GET", "/cases/" .. some_case(), headers)
  elseif kind == "history" then
    return wrk.format("GET", "/cases/" .. some_case() .. "/history", headers)
  else
    return wrk.format("GET", "/scores?by=street", headers)
  end
end

-- A registration's answer (the only 201) names the new case: classify it later.
response = function(status, hdrs, body)
  if status == 201 then
    local id = string.match(body, '"case_id":"([0-9a-f%-]+)"')
    if id and #waiting < 1000 then table.insert(waiting, id) end
  end
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50=%.2f p99=%.2f errors=%d non2xx=%d n=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.requests))
end
