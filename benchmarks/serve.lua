-- wrk script for benchmarks/serve.py: POST the seed payload to /generate.
--
-- Environment (read by every wrk thread):
--   COSMOS_BENCH_PAYLOADS  payload files separated by ':'; requests cycle through them
--                          (two payloads that differ make every request a store write)
--   COSMOS_BENCH_RATE      total requests/s to pace at (0 = as fast as possible)
--   COSMOS_BENCH_THREADS   wrk threads (wrk -t), to share the rate between them
--   COSMOS_BENCH_TOKEN     bearer token, if the server wants one
local function read(path)
  local f = assert(io.open(path, "rb"))
  local body = f:read("*a")
  f:close()
  return body
end

local bodies = {}
for path in string.gmatch(os.getenv("COSMOS_BENCH_PAYLOADS") or "examples/seed-payload.json", "[^:]+") do
  bodies[#bodies + 1] = read(path)
end
local rate = tonumber(os.getenv("COSMOS_BENCH_RATE") or "0")
local headers = { ["Content-Type"] = "application/json" }
local token = os.getenv("COSMOS_BENCH_TOKEN")
if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end

local counter = 0

function request()
  counter = counter + 1
  return wrk.format("POST", "/generate", headers, bodies[(counter % #bodies) + 1])
end

-- Pacing: each wrk thread hands out send slots on a fixed schedule (its share
-- of `rate`); a connection that is ready waits for the next free slot.  A
-- thread that falls behind catches up on at most CATCH_UP_MS of missed slots,
-- so a stall is not followed by a large burst.
local CATCH_UP_MS = 100
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } cosmos_timespec;
  int clock_gettime(int clock_id, cosmos_timespec *tp);
]]
local now_ts = ffi.new("cosmos_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, now_ts) -- CLOCK_MONOTONIC
  return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
end

local threads = tonumber(os.getenv("COSMOS_BENCH_THREADS") or "1")
local interval = 0
if rate > 0 then interval = 1000 * threads / rate end
local next_slot = nil

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  if next_slot == nil or next_slot < now - CATCH_UP_MS then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + interval
  return math.max(0, math.floor(wait + 0.5))
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
    '"errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
