-- wrk script of bench/bench_intake.py: POST /webhook with signed workflow_job
-- deliveries read from a file of its own per thread, each a whole HTTP
-- request prepared by the bench ("LENGTH\n" and its bytes: HMAC-SHA256
-- cannot be computed here at the rate wrk sends, and a request built here
-- for each send costs wrk more CPU than the server it measures). Each
-- thread sends its requests in order, as they are, and starts them again
-- when it is through (so a run that outpaces them sends duplicates: the
-- answers by status say so).
--
--   wrk -s bench_intake.lua URL -- PREFIX THREADS CONNECTIONS
--     PREFIX: thread i reads PREFIX.i (i from 1), and says it is ready in
--     PREFIX.ready.i; THREADS, CONNECTIONS: wrk's -t and -c
-- At the end it prints "statuses CODE=N ..." (every answer by HTTP status)
-- and a "result ..." line with wrk's figures.
--
-- Two things of wrk 4.1 this script undoes, each of which bent the figures:
-- - wrk runs each thread's init() in its main thread, one after the other,
--   and starts a thread once its init is done, but starts its clock only
--   after the last one. Reading 100,000 distinct requests of 7 KB takes
--   3-4 s here, so the first thread sent for that long before the clock
--   started, and its requests of that time counted in the rate: nginx's by
--   up to half again. So no thread sends before every thread has read its
--   requests (each says so in a file; a thread that waits polls for them).
-- - Before it hands its latencies to done(), wrk "corrects" them for
--   coordinated omission: a request that took n expected intervals
--   (the run's time / requests a connection) adds n - 1 made-up ones, at
--   each interval below it. One stall of 300 ms at 1 ms an interval
--   becomes 300 samples, and a handful of stalls moved the p99 from 20 ms
--   to 300. done() takes the made-up samples out again (measured_percentile)
--   and prints the percentiles of the latencies measured (p50_ms, p99_ms)
--   beside wrk's corrected p99 (p99c_ms).

local threads = {}
local counter = 1

function setup(thread)
	thread:set("id", counter)
	counter = counter + 1
	table.insert(threads, thread)
end

local ffi = require("ffi") -- wrk's Lua is LuaJIT
ffi.cdef("int usleep(unsigned int usec);")

local lines, n, i = {}, 0, 0
local prefix, nthreads
local checked, ready = false, false
statuses = {} -- a global: done() reads each thread's through thread:get

function init(args)
	prefix, nthreads = args[1], tonumber(args[2])
	connections = tonumber(args[3]) -- a global: done() runs in wrk's main state, and reads it through thread:get
	local f = assert(io.open(prefix .. "." .. id, "rb"))
	while true do
		local len = f:read("*l")
		if not len then
			break
		end
		n = n + 1
		lines[n] = f:read(tonumber(len))
	end
	f:close()
	assert(io.open(prefix .. ".ready." .. id, "wb")):close()
end

-- every thread's requests read (each thread's init wrote its file)
local function all_ready()
	for t = 1, nthreads do
		local f = io.open(prefix .. ".ready." .. t, "rb")
		if not f then
			return false
		end
		f:close()
	end
	return true
end

function request()
	if not ready then
		if id == 1 and not checked then
			-- wrk's main thread asks thread 1 for a request to check it, before the others' init
			checked = true
		else
			while not all_ready() do -- a few seconds
				ffi.C.usleep(1000) -- (os.execute's sleep would fork all of wrk's memory)
			end
			ready = true
		end
	end
	i = i + 1
	if i > n then
		i = 1
	end
	return lines[i]
end

function response(status, headers, body)
	statuses[status] = (statuses[status] or 0) + 1
end

-- The latencies measured, out of wrk's corrected ones (above). wrk 4.1's Lua
-- sees only percentiles of the corrected histogram C, so this works with
-- P(x), the share of C at or below x us (found by bisecting the percentile).
-- Below the interval e nothing was made up: measured = C. A measured latency
-- n above 2e left one made-up sample in every window (v, v + e] with v >= e
-- below it, so the measured samples above v are C's in (v, v + e], and all of
-- them are C's at or below 2e. Returns the measured p-th percentile in us.
local function measured_percentile(summary, latency, connections, p)
	local per = math.floor(summary.requests / connections)
	local e = per > 0 and math.floor(summary.duration / per) or 0
	local lo, hi = latency.min, latency.max
	local function share_at_or_below(x)
		if x < latency.min then
			return 0
		elseif x >= latency.max then
			return 1
		end
		local a, b = 0, 1
		for _ = 1, 40 do
			local m = (a + b) / 2
			if latency:percentile(100 * m) <= x then
				a = m
			else
				b = m
			end
		end
		return a
	end
	if e == 0 then
		return latency:percentile(p)
	end
	local all = share_at_or_below(2 * e)
	local function below(v) -- the measured share at or below v
		if v <= e then
			return share_at_or_below(v) / all
		end
		return 1 - (share_at_or_below(v + e) - share_at_or_below(v)) / all
	end
	while lo < hi do -- the smallest v with below(v) >= p
		local v = math.floor((lo + hi) / 2)
		if below(v) >= p / 100 then
			hi = v
		else
			lo = v + 1
		end
	end
	return lo
end

function done(summary, latency, requests)
	local all = {}
	for _, t in ipairs(threads) do
		local s = t:get("statuses")
		for code, k in pairs(s) do
			all[code] = (all[code] or 0) + k
		end
	end
	local out = "statuses"
	for code, k in pairs(all) do
		out = out .. " " .. code .. "=" .. k
	end
	print(out)
	local connections = threads[1]:get("connections")
	print(string.format("result requests=%d duration_us=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f p99c_ms=%.3f max_ms=%.3f errors=%d",
		summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
		measured_percentile(summary, latency, connections, 50) / 1000,
		measured_percentile(summary, latency, connections, 99) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
		summary.errors.connect + summary.errors.read + summary.errors.write +
		summary.errors.status + summary.errors.timeout))
end
