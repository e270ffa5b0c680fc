#!/usr/bin/env node
// Proves that ghsim answers every GitHub operation it serves the way GitHub's
// published REST description says GitHub answers: each request goes through
// proxy.js (Accept rewrite) to `prism proxy --errors` (api.github.com.json)
// in front of ghsim, which turns an answer that breaks the description into a
// 500 with sl-violations. Repository and organization scope; lists with
// pagination and ETag/304, errors (401/403/404/409/422), JIT, downloads,
// runner groups, jobs and workflow runs, the App token exchange. Error
// statuses GitHub does not document for an operation (Prism only warns about
// those) are checked here against the description's basic-error schema. With
// --driver, runnerd's own client runs through the same chain too (pagination
// over 150 runners, the JIT 409 recovery, groups, downloads, completed
// jobs), so its requests and ghsim's answers are checked together. Setup
// goes straight to ghsim's control API (/_ghsim/, not part of GitHub).
// 127.0.0.1 only.
//
// usage: ghsim.js --port PROXY_PORT --log PROXY_LOG --ghsim-port PORT [--app-key FILE] [--driver PATH]
'use strict';

const crypto = require('crypto');
const { spawnSync } = require('child_process');
const fs = require('fs');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');
const lib = require('./lib');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.port || !args.log || !args['ghsim-port']) {
	process.stderr.write('usage: ghsim.js --port PROXY_PORT --log PROXY_LOG --ghsim-port PORT [--app-key FILE]\n');
	process.exit(2);
}
const PORT = Number(args.port);
const GHSIM = Number(args['ghsim-port']);
const TOKEN = 'ghp_contractFakeToken0123456789abcdefABCD';
const log = new lib.ProxyLog(args.log);

const desc = require('@octokit/openapi/generated/api.github.com.json');
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const basicError = ajv.compile(desc.components.schemas['basic-error']);

const RATE_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-ratelimit-used', 'x-ratelimit-resource'];

function control(method, path, body) {
	return lib.request({ port: GHSIM, method, path: '/_ghsim' + path, body });
}

function headers(extra, auth) {
	return Object.assign({
		accept: 'application/vnd.github+json',
		'x-github-api-version': '2022-11-28',
		'user-agent': 'runnerd-contract',
		authorization: auth === undefined ? 'Bearer ' + TOKEN : auth,
	}, extra || {});
}

// One GitHub call through the chain, judged: the expected status, no error
// violation from Prism, rate-limit headers, an undocumented error's body in
// GitHub's basic-error shape, and whatever `more` adds.
async function call(name, method, path, opt) {
	opt = opt || {};
	const problems = [];
	let res;
	try {
		res = await lib.request({ port: PORT, method, path, body: opt.body, headers: headers(opt.headers, opt.auth) });
	} catch (e) {
		lib.report(false, name, ['request failed: ' + e.message]);
		return null;
	}
	const seen = log.next();
	const x = seen[seen.length - 1];
	for (const s of seen) {
		const errs = lib.errorViolations(s);
		if (!errs.length) continue;
		if (errs.some((v) => Array.isArray(v.location) && v.location[0] === 'request')) problems.push('Prism refused the test\'s own request (a bug in this test): ' + lib.describeEntry(s));
		else problems.push('ghsim\'s answer breaks the description: ' + lib.describeEntry(s));
	}
	const want = [].concat(opt.status || 200);
	if (!want.includes(res.status)) problems.push('status ' + res.status + ', wanted ' + want.join('|') + (x ? ': ' + lib.describeEntry(x) : ''));
	if (opt.auth === undefined && res.status !== 401) {
		const missing = RATE_HEADERS.filter((h) => res.headers[h] === undefined);
		if (missing.length) problems.push('missing rate-limit headers: ' + missing.join(', '));
	}
	const warned = x && (x.violations || []).some((v) => /Unable to match the returned status code/.test(v.message || ''));
	if (res.status >= 400) {
		if (!res.json || !basicError(res.json) || typeof res.json.message !== 'string') problems.push('error body is not GitHub\'s basic-error shape: ' + res.body.toString('utf8').slice(0, 300));
	}
	if (opt.more && problems.length === 0) {
		try {
			problems.push(...(opt.more(res) || []));
		} catch (e) {
			problems.push('check threw: ' + e.message);
		}
	}
	const label = name + ' (' + method + ' ' + path + ' -> ' + res.status + (warned ? ', status not in the description: body checked as basic-error' : '') + ')';
	lib.report(problems.length === 0, label, problems);
	return res;
}

function links(res) {
	const out = {};
	for (const part of String(res.headers.link || '').split(',')) {
		const m = /<([^>]*)>\s*;\s*rel="([^"]+)"/.exec(part);
		if (m) out[m[2]] = new URL(m[1]);
	}
	return out;
}

function b64url(buf) {
	return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function appJwt(keyPem, appId) {
	const now = Math.floor(Date.now() / 1000);
	const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
	const body = b64url(JSON.stringify({ iat: now - 60, exp: now + 540, iss: appId }));
	const sig = crypto.sign('sha256', Buffer.from(head + '.' + body), keyPem);
	return head + '.' + body + '.' + b64url(sig);
}

async function addRunner(scope, name, busy, count) {
	const r = await control('POST', '/runners', { scope, name, labels: ['self-hosted', 'linux', 'x64', 'contract'], status: 'online', busy, count: count || 1 });
	const made = r.json && Array.isArray(r.json.runners) ? r.json.runners : [];
	if (r.status < 200 || r.status > 299 || made.length !== (count || 1)) throw new Error('control: add runner ' + name + ': ' + r.status + ' ' + r.body);
	return count ? made.map((x) => x.id) : made[0].id;
}

// runnerd's own client (contract_driver) against ghsim through the same
// chain: Prism checks the client's requests and ghsim's answers at once.
function driverCase(name, scopePath, argv, opt) {
	const r = spawnSync(args.driver, ['--api', 'http://127.0.0.1:' + PORT, '--path', scopePath].concat(argv), {
		env: Object.assign({}, process.env, { CONTRACT_TOKEN: TOKEN }),
		encoding: 'utf8',
		timeout: 60000,
	});
	const out = (r.stdout || '').trim();
	const seen = log.next();
	const problems = [];
	if (r.status !== 0) problems.push('client failed (exit ' + (r.signal || r.status) + '): ' + (out || r.stderr));
	for (const x of seen) {
		if (lib.errorViolations(x).length) problems.push('Prism: ' + lib.describeEntry(x));
		else if (x.status >= 400 && !(opt.allow || []).includes(x.status)) problems.push('error answer: ' + lib.describeEntry(x));
	}
	if (opt.requests && !opt.requests(seen)) problems.push('unexpected requests: ' + seen.map((x) => x.method + ' ' + x.url + ' -> ' + x.status).join(', '));
	if (r.status === 0 && opt.result && !opt.result.test(out)) problems.push('client result: ' + out.slice(0, 400) + ' (wanted ' + opt.result + ')');
	const summary = seen.map((x) => x.method + ' ' + new URL(x.url, 'http://x').pathname + new URL(x.url, 'http://x').search + ' -> ' + x.status);
	lib.report(problems.length === 0, name + ' (' + (summary.length > 4 ? summary.slice(0, 3).join(', ') + ', ... ' + summary.length + ' requests' : summary.join(', ')) + ')', problems);
}

async function clientCases() {
	for (const [label, scope, scopePath] of [['repo', 'repos/octo/paged', 'octo/paged'], ['org', 'orgs/octo-paged', 'octo-paged']]) {
		await addRunner(scope, 'contract-{hex}', false, 150);
		driverCase('client vs ghsim, ' + label + ' scope: list 150 runners over 2 pages (per_page=100, Link rel="next")', scopePath, ['list_runners'], {
			requests: (seen) => seen.length === 2 && seen.every((x) => x.method === 'GET' && x.status === 200),
			result: /^result: runners n=150 complete=1 /,
		});
		// The same list twice in one client: the second pass sends each page's ETag
		// (If-None-Match) and gets 304s, which Prism must accept both ways.
		driverCase('client vs ghsim, ' + label + ' scope: list twice, the second time with If-None-Match -> 304 per page', scopePath, ['list_runners_twice'], {
			requests: (seen) => seen.length === 4 && seen.every((x) => x.method === 'GET') &&
				seen[0].status === 200 && seen[1].status === 200 && !seen[0].if_none_match && !seen[1].if_none_match &&
				seen[2].status === 304 && seen[3].status === 304 && !!seen[2].if_none_match && !!seen[3].if_none_match &&
				seen[2].url === seen[0].url && seen[3].url === seen[1].url,
			result: /^result: runners n=150 complete=1 again n=150 complete=1 same=1 sent=4 not_modified=2$/,
		});
		driverCase('client vs ghsim, ' + label + ' scope: check scope', scopePath, ['check_scope'], {
			requests: (seen) => seen.length === 1 && seen[0].method === 'GET' && seen[0].status === 200 &&
				new URL(seen[0].url, 'http://x').pathname === '/' + (label === 'org' ? 'orgs/' : 'repos/') + scopePath,
			result: new RegExp('^result: scope ' + scope + ' ok$'),
		});
	}
	// A name that is already registered: the client resolves the 409 itself
	// (looks the runner up by name, deletes the idle registration, tries once
	// more), in both scopes.
	for (const [label, prefix, scopePath] of [['repo', 'repos/octo/hello', 'octo/hello'], ['org', 'orgs/octo-org', 'octo-org']]) {
		const name = 'contract-' + crypto.randomBytes(6).toString('hex');
		const first = await lib.request({ port: GHSIM, method: 'POST', path: '/' + prefix + '/actions/runners/generate-jitconfig', body: { name, runner_group_id: 1, labels: ['self-hosted', 'contract'] }, headers: headers() });
		if (first.status !== 201) {
			lib.report(false, 'client vs ghsim, ' + label + ' scope: set up a registered JIT runner', [first.status + ' ' + first.body]);
			continue;
		}
		const id = first.json.runner.id;
		driverCase('client vs ghsim, ' + label + ' scope: generate JIT config for a registered name resolves the 409 (runner looked up by ?name=)', scopePath,
			['generate_jitconfig', name, '1', 'self-hosted,linux,x64,contract', '_work'], {
				allow: [409],
				requests: (seen) => {
					if (seen.length !== 4) return false;
					const u = new URL(seen[1].url, 'http://x');
					return seen[0].method === 'POST' && seen[0].status === 409 &&
						seen[1].method === 'GET' && u.pathname === '/' + prefix + '/actions/runners' && u.searchParams.get('name') === name && seen[1].status === 200 &&
						seen[2].method === 'DELETE' && new URL(seen[2].url, 'http://x').pathname === '/' + prefix + '/actions/runners/' + id && seen[2].status === 204 &&
						seen[3].method === 'POST' && seen[3].status === 201;
				},
				result: /^result: jit runner_id=[1-9][0-9]* config_len=[1-9]/,
			});
	}
	driverCase('client vs ghsim, org scope: runner group "contract-group" -> id', 'octo-org', ['runner_group_id', 'contract-group'], {
		requests: (seen) => seen.length === 1 && seen[0].status === 200,
		result: /^result: group contract-group id=[2-9][0-9]*$/,
	});
	driverCase('client vs ghsim, repo scope: runner downloads', 'octo/hello', ['list_runner_applications'], {
		requests: (seen) => seen.length === 1,
		result: /app=linux\/x64:actions-runner-linux-x64-[0-9.]+\.tar\.gz:sha256=[0-9a-f]{64}/,
	});
	const jobs = await control('GET', '/jobs');
	const list = Array.isArray(jobs.json) ? jobs.json : (jobs.json && jobs.json.jobs) || [];
	for (const j of list.filter((x) => x.status === 'completed').slice(0, 2)) {
		driverCase('client vs ghsim: get completed job ' + j.id + ' of ' + j.repo, j.repo.split('/')[0], ['get_job', j.repo, String(j.id)], {
			requests: (seen) => seen.length === 1 && seen[0].status === 200,
			result: new RegExp('^result: job=' + j.id + ' run=[0-9]+ status=completed conclusion=[a-z]+ .*runner=[1-9][0-9]*:contract-'),
		});
	}
}

async function scopeCases(label, scope, jobRepo) {
	const tag = crypto.randomBytes(3).toString('hex');
	const names = [0, 1, 2].map((i) => 'contract-' + tag + '00000' + i);
	const ids = [];
	for (const n of names) ids.push(await addRunner(scope, n, false));
	const busyId = await addRunner(scope, 'contract-' + tag + '00000b', true);
	const base = '/' + scope + '/actions/runners';

	// pagination + ETag
	const p1 = await call(label + ': list runners, page 1 of 2 with Link and ETag', 'GET', base + '?per_page=2', {
		more: (res) => {
			const pr = [];
			const l = links(res);
			if (!l.next || !l.last) pr.push('Link without rel="next" and rel="last": ' + res.headers.link);
			if (!res.headers.etag) pr.push('no ETag');
			if (!res.json || !Array.isArray(res.json.runners) || res.json.runners.length !== 2) pr.push('page 1 should hold 2 runners');
			if (!res.json || !(res.json.total_count >= 4)) pr.push('total_count ' + (res.json && res.json.total_count) + ' < 4');
			return pr;
		},
	});
	let all = p1 && p1.json ? p1.json.runners.slice() : [];
	let next = p1 ? links(p1).next : null;
	let pages = 1;
	while (next && pages < 20) {
		pages++;
		const r = await call(label + ': list runners, page ' + pages + ' (Link rel="next")', 'GET', next.pathname + next.search);
		if (!r || !r.json) break;
		all = all.concat(r.json.runners || []);
		next = links(r).next;
	}
	const got = new Set(all.map((r) => r.id));
	lib.report(ids.concat(busyId).every((id) => got.has(id)) && got.size === all.length,
		label + ': following Link reaches every runner exactly once (' + all.length + ' on ' + pages + ' pages)');

	if (p1 && p1.headers.etag) {
		const before = await control('GET', '/stats');
		const r304 = await call(label + ': list runners again with If-None-Match -> 304', 'GET', base + '?per_page=2', {
			status: 304, headers: { 'if-none-match': p1.headers.etag },
			more: (res) => (res.body.length ? ['304 with a body'] : []),
		});
		const after = await control('GET', '/stats');
		if (r304 && before.json && after.json) {
			lib.report(after.json.rate_counted === before.json.rate_counted && after.json.not_modified === before.json.not_modified + 1,
				label + ': the 304 did not count against the rate limit (rate_counted ' + before.json.rate_counted + ' -> ' + after.json.rate_counted + ')');
		}
		await call(label + ': list runners with a stale ETag -> 200', 'GET', base + '?per_page=2', { headers: { 'if-none-match': '"stale"' } });
	}

	await call(label + ': get runner', 'GET', base + '/' + ids[0], {
		more: (res) => (res.json && res.json.id === ids[0] && res.json.name === names[0] ? [] : ['wrong runner: ' + res.body]),
	});
	await call(label + ': get unknown runner -> 404', 'GET', base + '/987654321', { status: 404 });
	await call(label + ': delete a busy runner -> 422', 'DELETE', base + '/' + busyId, { status: 422 });
	await call(label + ': delete an idle runner -> 204', 'DELETE', base + '/' + ids[1], { status: 204, more: (res) => (res.body.length ? ['204 with a body'] : []) });
	await call(label + ': get the deleted runner -> 404', 'GET', base + '/' + ids[1], { status: 404 });
	await call(label + ': delete it again -> 404', 'DELETE', base + '/' + ids[1], { status: 404 });

	const tokenShape = (res) => (res.json && typeof res.json.token === 'string' && res.json.token.length > 0 && !isNaN(Date.parse(res.json.expires_at)) ? [] : ['no token/expires_at']);
	await call(label + ': registration token -> 201', 'POST', base + '/registration-token', { status: 201, more: tokenShape });
	await call(label + ': remove token -> 201', 'POST', base + '/remove-token', { status: 201, more: tokenShape });

	const jitName = 'contract-' + tag + '0000a0';
	const jitBody = { name: jitName, runner_group_id: 1, labels: ['self-hosted', 'linux', 'x64', 'contract'], work_folder: '_work' };
	await call(label + ': generate JIT config -> 201', 'POST', base + '/generate-jitconfig', {
		status: 201, body: jitBody,
		more: (res) => (res.json && res.json.runner && res.json.runner.name === jitName && res.json.encoded_jit_config ? [] : ['no runner/encoded_jit_config']),
	});
	await call(label + ': generate JIT config for a name that exists -> 409', 'POST', base + '/generate-jitconfig', { status: 409, body: jitBody });

	await call(label + ': runner downloads', 'GET', base + '/downloads', {
		more: (res) => {
			const a = Array.isArray(res.json) && res.json.find((x) => x.os === 'linux' && x.architecture === 'x64');
			if (!a) return ['no linux/x64 application'];
			if (!/^[0-9a-f]{64}$/.test(a.sha256_checksum || '')) return ['no sha256_checksum'];
			if (new URL(a.download_url).hostname !== '127.0.0.1') return ['download_url is not local: ' + a.download_url];
			return [];
		},
	});

	// jobs: queued now; completed ones may exist from the webhook run
	const q = await control('POST', '/jobs', { repo: jobRepo, labels: ['self-hosted', 'contract-none-' + tag], duration: 1, workflow: 'contract', event: 'push' });
	if (q.json && q.json.id) {
		await call(label + ': get queued job ' + q.json.id, 'GET', '/repos/' + jobRepo + '/actions/jobs/' + q.json.id, {
			more: (res) => (res.json && res.json.id === q.json.id && res.json.status === 'queued' ? [] : ['wrong job: ' + res.body.toString('utf8').slice(0, 200)]),
		});
		await call(label + ': list jobs of run ' + q.json.run_id, 'GET', '/repos/' + jobRepo + '/actions/runs/' + q.json.run_id + '/jobs', {
			more: (res) => (res.json && Array.isArray(res.json.jobs) && res.json.jobs.some((j) => j.id === q.json.id) ? [] : ['job missing from its run']),
		});
		// the repository's runs, filtered by status: the queued job's run is queued, not completed
		const runs = '/repos/' + jobRepo + '/actions/runs';
		const runsOf = (res, status) => {
			const pr = [];
			const wr = res.json && Array.isArray(res.json.workflow_runs) ? res.json.workflow_runs : null;
			if (!wr) return { wr, pr: ['no workflow_runs list'] };
			if (!(res.json.total_count >= wr.length)) pr.push('total_count ' + res.json.total_count + ' < ' + wr.length + ' runs listed');
			const other = wr.filter((r) => r.status !== status);
			if (other.length) pr.push('runs that are not ' + status + ': ' + other.map((r) => r.id + ' ' + r.status).join(', '));
			return { wr, pr };
		};
		const rq = await call(label + ': list queued runs of ' + jobRepo + ' (run ' + q.json.run_id + ' among them)', 'GET', runs + '?status=queued&per_page=100', {
			more: (res) => {
				const { wr, pr } = runsOf(res, 'queued');
				if (!wr) return pr;
				if (!wr.some((r) => r.id === q.json.run_id)) pr.push('run ' + q.json.run_id + ' of the queued job is missing');
				if (!res.headers.etag) pr.push('no ETag');
				return pr;
			},
		});
		await call(label + ': list completed runs of ' + jobRepo + ' (run ' + q.json.run_id + ' not among them)', 'GET', runs + '?status=completed&per_page=100', {
			more: (res) => {
				const { wr, pr } = runsOf(res, 'completed');
				if (!wr) return pr;
				if (wr.some((r) => r.id === q.json.run_id)) pr.push('run ' + q.json.run_id + ' of the queued job is listed as completed');
				return pr;
			},
		});
		if (rq && rq.headers.etag) {
			await call(label + ': list queued runs again with If-None-Match -> 304', 'GET', runs + '?status=queued&per_page=100', {
				status: 304, headers: { 'if-none-match': rq.headers.etag },
				more: (res) => (res.body.length ? ['304 with a body'] : []),
			});
		}
	} else {
		lib.report(false, label + ': control API queues a job', [q.status + ' ' + q.body]);
	}
	await call(label + ': get unknown job -> 404', 'GET', '/repos/' + jobRepo + '/actions/jobs/9876543210', { status: 404 });
}

// The hook deliveries API (runnerd's backfill of missed webhooks): a delivery
// that failed is listed (all, failures only, a page of one with its cursor)
// and redelivered; another hook or delivery is 404.
async function hookCases(label, scopePath, jobRepo) {
	const hook = scopePath + '/hooks/498765/deliveries';
	await control('POST', '/webhook', { url: 'http://127.0.0.1:9/webhook', secret: 'contract', skip_actions: ['queued'] });
	const q = await control('POST', '/jobs', { repo: jobRepo, labels: ['self-hosted', 'contract-hook'], duration: 1 });
	const mine = (res) => (Array.isArray(res.json) ? res.json.filter((d) => d.event === 'workflow_job' && d.action === 'queued') : []);
	let failed = null;
	await call(label + ': list hook deliveries', 'GET', hook + '?per_page=100', {
		more: (res) => (mine(res).length ? [] : ['the failed queued delivery of job ' + (q.json && q.json.id) + ' is not listed']),
	});
	await call(label + ': list failed hook deliveries', 'GET', hook + '?per_page=100&status=failure', {
		more: (res) => {
			const f = mine(res);
			failed = f.length ? f[0] : null;
			const pr = [];
			if (!failed) pr.push('not listed as a failure');
			if (res.json.some((d) => d.status_code >= 200 && d.status_code < 300)) pr.push('a success among failures');
			return pr;
		},
	});
	const one = await call(label + ': a page of one hook delivery', 'GET', hook + '?per_page=1', {
		more: (res) => (Array.isArray(res.json) && res.json.length === 1 ? [] : ['not one delivery']),
	});
	const next = one && links(one).next;
	if (next) {
		await call(label + ': the next page by its cursor', 'GET', next.pathname + next.search, {
			more: (res) => (Array.isArray(res.json) && res.json.length <= 1 && (!res.json[0] || res.json[0].id < one.json[0].id) ? [] : ['the cursor did not move on']),
		});
	}
	if (failed) {
		await call(label + ': redeliver a failed delivery', 'POST', hook + '/' + failed.id + '/attempts', { status: 202 });
	}
	await call(label + ': redeliver an unknown delivery -> 404', 'POST', hook + '/1/attempts', { status: 404 });
	await call(label + ': deliveries of another hook -> 404', 'GET', scopePath + '/hooks/1/deliveries', { status: 404 });
	await control('POST', '/webhook', { url: '', secret: '' });
}

async function main() {
	log.next();

	// Not vacuous: an answer that breaks the description must come back as a
	// 500 with sl-violations (ghsim's fault injection sends a wrong body).
	const f = await control('POST', '/faults', { match: '/actions/runners/downloads', method: 'GET', status: 200, body: { not: 'a list' }, count: 1 });
	if (f.status >= 200 && f.status < 300) {
		const r = await lib.request({ port: PORT, path: '/repos/octo/hello/actions/runners/downloads', headers: headers() });
		const x = log.next().pop();
		lib.report(r.status === 500 && x && lib.errorViolations(x).length > 0,
			'self-check: Prism turns an answer that breaks the description into a 500 with sl-violations (' + (x ? lib.describeEntry(x).slice(0, 300) : r.status) + ')');
		await control('DELETE', '/faults');
	} else {
		lib.report(false, 'self-check: ghsim fault injection', [f.status + ' ' + f.body]);
	}

	await control('POST', '/runner-groups', { org: 'octo-org', name: 'contract-group' });

	await scopeCases('ghsim repo scope', 'repos/octo/hello', 'octo/hello');
	await scopeCases('ghsim org scope', 'orgs/octo-org', 'octo-org/octo-repo');
	await hookCases('ghsim repo scope', '/repos/octo/hello', 'octo/hello');
	await hookCases('ghsim org scope', '/orgs/octo-org', 'octo-org/octo-repo');

	await call('ghsim org scope: runner groups', 'GET', '/orgs/octo-org/actions/runner-groups', {
		more: (res) => {
			const g = (res.json && res.json.runner_groups) || [];
			const pr = [];
			if (!g.some((x) => x.id === 1 && x.name === 'Default' && x.default === true)) pr.push('no Default group with id 1');
			if (!g.some((x) => x.name === 'contract-group')) pr.push('the added group is missing');
			return pr;
		},
	});

	// jobs that ran (the webhook suite runs one per scope before this)
	const jobs = await control('GET', '/jobs');
	const list = Array.isArray(jobs.json) ? jobs.json : (jobs.json && jobs.json.jobs) || [];
	const done = list.filter((j) => j.status === 'completed').slice(0, 2);
	for (const j of done) {
		await call('ghsim: get completed job ' + j.id + ' (' + j.repo + ')', 'GET', '/repos/' + j.repo + '/actions/jobs/' + j.id, {
			more: (res) => (res.json && res.json.status === 'completed' && res.json.conclusion && res.json.runner_name ? [] : ['not a completed job with runner and conclusion']),
		});
	}
	if (done.length === 0) lib.note('no completed job to check (the webhook suite runs them)');

	await call('ghsim: rate limit', 'GET', '/rate_limit');
	await call('ghsim: get repository', 'GET', '/repos/octo/hello');
	await call('ghsim: get organization', 'GET', '/orgs/octo-org');
	await call('ghsim: bad token -> 401', 'GET', '/repos/octo/hello/actions/runners', { status: 401, auth: 'Bearer ghp_wrong' });

	const rl = await control('POST', '/ratelimit', { remaining: 0, reset_in: 30 });
	if (rl.status >= 200 && rl.status < 300) {
		await call('ghsim: rate limit exhausted -> 403', 'GET', '/repos/octo/hello/actions/runners', {
			status: 403,
			more: (res) => (res.headers['x-ratelimit-remaining'] === '0' ? [] : ['X-RateLimit-Remaining is ' + res.headers['x-ratelimit-remaining']]),
		});
		await control('POST', '/ratelimit', { remaining: 5000, reset_in: 3600 });
	} else {
		lib.report(false, 'ghsim: control API sets the rate-limit budget', [rl.status + ' ' + rl.body]);
	}

	if (args.driver) await clientCases();

	if (args['app-key']) {
		const key = fs.readFileSync(args['app-key'], 'utf8');
		// GitHub's two installation-token formats (changelog 2026-04-24 and 2026-05-15):
		// stateless "ghs_<APP ID>_<JWT>" (~520 characters) and classic "ghs_" + 36.
		// X-GitHub-Stateless-S2S-Token: enabled|disabled picks one; other values are
		// ignored; without it ghsim mints the stateless one (its rollout default).
		const stateless = (t) => /^ghs_1234_eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(t) && t.length >= 400;
		const classic = (t) => /^ghs_[A-Za-z0-9]{36}$/.test(t);
		const kinds = [
			['no format asked', undefined, stateless, 'stateless'],
			['X-GitHub-Stateless-S2S-Token: enabled', 'enabled', stateless, 'stateless'],
			['X-GitHub-Stateless-S2S-Token: disabled', 'disabled', classic, 'classic'],
			['X-GitHub-Stateless-S2S-Token: true (ignored)', 'true', stateless, 'stateless'],
		];
		for (const [what, value, shape, name] of kinds) {
			const r = await call('ghsim App: installation token from a JWT, ' + what + ' -> 201 ' + name, 'POST', '/app/installations/4242/access_tokens', {
				status: 201, auth: 'Bearer ' + appJwt(key, 1234),
				headers: value === undefined ? {} : { 'x-github-stateless-s2s-token': value },
				more: (res) => {
					const t = (res.json && res.json.token) || '';
					const p = [];
					if (!shape(t)) p.push('not a ' + name + ' token (' + t.length + ' characters)');
					if (!(Date.parse(res.json && res.json.expires_at) > Date.now())) p.push('no future expires_at');
					return p;
				},
			});
			const tok = r && r.json && r.json.token;
			if (!tok) continue;
			await call('ghsim App: the ' + name + ' installation token lists runners', 'GET', '/repos/octo/hello/actions/runners', { auth: 'Bearer ' + tok });
			// taken byte for byte: a client that cut it short is refused
			await call('ghsim App: the ' + name + ' installation token one byte short -> 401', 'GET', '/repos/octo/hello/actions/runners', {
				status: 401, auth: 'Bearer ' + tok.slice(0, -1),
			});
		}
		await call('ghsim App: a JWT signed by another key -> 401', 'POST', '/app/installations/4242/access_tokens', {
			status: 401, auth: 'Bearer ' + appJwt(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 1234),
		});
	}

	process.exit(lib.counts().failed ? 1 : 0);
}

main().catch((e) => {
	lib.report(false, 'ghsim checks: ' + e.message, [e.stack]);
	process.exit(1);
});
