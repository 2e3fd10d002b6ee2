-- wrk script for bench/run.py: POST the shim's event batches, each event with a unique client id.
--
-- Configured through the environment (bench/loadgen.py sets it):
--   TM_PATH      request path                          (/messenger/web/events)
--   TM_APP_ID    the workspace's app_id
--   TM_SESSIONS  session tokens, separated by spaces   (requests rotate over them: many visitors)
--   TM_BATCH     events per request                    (1 = single-event requests)
--   TM_RUN       a prefix that makes ids unique across runs
--   TM_ACKS      a file to write the acknowledged event ids to (one a line), or empty
-- On exit it prints one line "TMJSON {...}" with the counts and the latency percentiles (µs).

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function split(s)
  local out = {}
  for part in string.gmatch(s or "", "%S+") do table.insert(out, part) end
  return out
end

local names = {"page-view", "pricing-viewed", "signup-started", "upload-complete", "invited-friend",
               "plan-upgraded", "search", "video-played"}

function init(args)
  path = os.getenv("TM_PATH") or "/messenger/web/events"
  app_id = os.getenv("TM_APP_ID") or "bench"
  sessions = split(os.getenv("TM_SESSIONS"))
  if #sessions == 0 then sessions = {"none"} end
  batch = tonumber(os.getenv("TM_BATCH") or "1")
  run = os.getenv("TM_RUN") or "r"
  want_acks = (os.getenv("TM_ACKS") or "") ~= ""
  n, ok, bad = 0, 0, 0
  statuses = {}
  acked = {}
  headers = {["Content-Type"] = "text/plain;charset=UTF-8", ["Origin"] = "http://site.example"}
end

function request()
  n = n + 1
  local session = sessions[(n % #sessions) + 1]
  local events = {}
  for i = 1, batch do
    events[i] = string.format(
      '{"id":"%s-%d-%d-%d","event_name":"%s","metadata":{"plan":"pro","seats":%d,"page":"/pricing"}}',
      run, tid, n, i, names[((n + i) % #names) + 1], i)
  end
  local body = string.format('{"app_id":"%s","session":"%s","events":[%s]}',
                             app_id, session, table.concat(events, ","))
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
    if want_acks and body then
      for id in string.gmatch(body, '"id":"([^"]+)","status":"accepted"') do
        acked[#acked + 1] = id
      end
    end
  else
    bad = bad + 1
    statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad, codes, ack_count = 0, 0, {}, 0
  local ack_path = os.getenv("TM_ACKS") or ""
  local f = nil
  if ack_path ~= "" then f = io.open(ack_path, "w") end
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
    for code, count in pairs(t:get("statuses")) do codes[code] = (codes[code] or 0) + count end
    if f then
      local ids = t:get("acked")
      for _, id in ipairs(ids) do f:write(id, "\n") end
      ack_count = ack_count + #ids
    end
  end
  if f then f:close() end
  local parts = {}
  for code, count in pairs(codes) do table.insert(parts, string.format('"%s":%d', code, count)) end
  local e = summary.errors
  io.write(string.format(
    'TMJSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"bad_statuses":{%s},"acked":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, total_ok, total_bad, table.concat(parts, ","), ack_count,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout))
end
