-- wrk script of bench/bench_intake.py: POST /webhook with signed workflow_job
-- deliveries read from a file of its own per thread (prepared by the bench:
-- "DELIVERY<TAB>SIGNATURE<TAB>BODY" a line; HMAC-SHA256 cannot be computed
-- here at the rate wrk sends). Each thread sends its lines in order, and
-- starts them again when it is through (so a run that outpaces its lines
-- sends duplicates: the answers by status say so).
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
	local prefix = args[1]
	for line in io.lines(prefix .. "." .. id) do
		n = n + 1
		lines[n] = line
	end
end

function request()
	i = i + 1
	if i > n then
		i = 1
	end
	local delivery, sig, body = lines[i]:match("^([^\t]*)\t([^\t]*)\t(.*)$")
	return wrk.format("POST", "/webhook", {
		["Content-Type"] = "application/json",
		["X-GitHub-Event"] = "workflow_job",
		["X-GitHub-Delivery"] = delivery,
		["X-Hub-Signature-256"] = sig,
		["User-Agent"] = "GitHub-Hookshot/bench",
	}, body)
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
