-- wrk script of bench/bench_intake.py: POST /webhook with signed workflow_job
-- deliveries read from a file of its own per thread, each a whole HTTP
-- request prepared by the bench ("LENGTH\n" and its bytes: HMAC-SHA256
-- cannot be computed here at the rate wrk sends, and a request built here
-- for each send costs wrk more CPU than the server it measures). Each
-- thread sends its requests in order, as they are, and starts them again
-- when it is through (so a run that outpaces them sends duplicates: the
-- answers by status say so).
--
--   wrk -s bench_intake.lua URL -- PREFIX
--     PREFIX: thread i reads PREFIX.i (i from 1)
-- At the end it prints "statuses CODE=N ..." (every answer by HTTP status)
-- and a "result ..." line with wrk's own figures.

local threads = {}
local counter = 1

function setup(thread)
	thread:set("id", counter)
	counter = counter + 1
	table.insert(threads, thread)
end

local lines, n, i = {}, 0, 0
statuses = {} -- a global: done() reads each thread's through thread:get

function init(args)
	local f = assert(io.open(args[1] .. "." .. id, "rb"))
	while true do
		local len = f:read("*l")
		if not len then
			break
		end
		n = n + 1
		lines[n] = f:read(tonumber(len))
	end
	f:close()
end

function request()
	i = i + 1
	if i > n then
		i = 1
	end
	return lines[i]
end

function response(status, headers, body)
	statuses[status] = (statuses[status] or 0) + 1
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
	print(string.format("result requests=%d duration_us=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d",
		summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		summary.errors.connect + summary.errors.read + summary.errors.write +
		summary.errors.status + summary.errors.timeout))
end
