#!/usr/bin/env node
// Proves that every request runnerd's GitHub client makes is valid under
// GitHub's published REST description, in repository and in organization
// scope: each operation runs through the real client (contract_driver, one
// call per run) against `prism mock` of api.github.com.json behind proxy.js,
// and each request the proxy saw must have been accepted by Prism (no
// sl-violations, the documented success status). Prism answers with the
// description's own examples, so the client's parse of each is checked too.
// It never sends traffic anywhere but the 127.0.0.1 proxy it is given.
//
// usage: client.js --driver PATH --port PROXY_PORT --log PROXY_LOG [--app-key FILE]
'use strict';

const { spawnSync } = require('child_process');
const lib = require('./lib');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.driver || !args.port || !args.log) {
	process.stderr.write('usage: client.js --driver PATH --port PROXY_PORT --log PROXY_LOG [--app-key FILE]\n');
	process.exit(2);
}

const api = 'http://127.0.0.1:' + args.port;
const log = new lib.ProxyLog(args.log);
const all = []; // every request the client made, for the header checks at the end

// The description's examples (what Prism answers with): the client must read
// them as GitHub means them.
const EX = {
	runnersList: [/runner=23:linux_runner:online:busy labels=self-hosted,X64,Linux( |$)/, /runner=24:mac_runner:offline:idle labels=self-hosted,X64,macOS,no-gpu( |$)/],
	runner: [/runner=23:MBP:online:busy labels=self-hosted,X64,macOS,no-gpu$/],
	token: [/token len=29 expires_at=1579724015$/], // 2020-01-22T12:13:35.123-08:00
	removeToken: [/token len=29 expires_at=1580328815$/], // 2020-01-29T12:13:35.123-08:00
	jit: [/jit runner_id=23 config_len=6$/],
	apps: [/applications n=[1-9]/, /app=linux\/x64:actions-runner-linux-x64-2\.164\.0\.tar\.gz/],
	job: [/job=399444496 run=29679449 status=completed conclusion=success name=build runner=1:my runner created=0 started=1579542160 completed=1579542279 labels=self-hosted,foo,bar$/],
	jobs: [/jobs n=1 job=399444496 run=29679449 status=completed conclusion=success/],
	// 2020-01-22T19:33:08Z
	runs: [/^result: runs n=1 \[id=30433642 attempt=1 status=queued at=1579721588 updated=1579721588\]$/m],
	// 2019-06-03T00:57:16Z and 2019-06-04T00:57:16Z
	deliveries: [/deliveries n=2 \[id=12345678 guid=0b989ba4-242f-11e5-81e1-c7b6966d2516 event=issues action=opened status=200 redelivery=0 at=1559523436\] \[id=123456789 guid=0b989ba4-242f-11e5-81e1-c7b6966d2516 event=issues action=opened status=200 redelivery=1 at=1559609836\]$/],
};

function driver(scopePath, argv, extra) {
	const res = spawnSync(args.driver, ['--api', api, '--path', scopePath].concat(extra || [], argv), {
		env: Object.assign({}, process.env, { CONTRACT_TOKEN: 'ghp_contractFakeToken0123456789abcdefABCD' }),
		encoding: 'utf8',
		timeout: 60000,
	});
	return {
		rc: res.status,
		signal: res.signal,
		out: (res.stdout || '').trim(),
		err: (res.stderr || '').trim(),
	};
}

// One case: run op, then judge the requests it made and what it printed.
// want: [{method, path: RegExp, status: [..]}] in order; result: [RegExp].
function check(name, scopePath, argv, want, result, extra) {
	const r = driver(scopePath, argv, extra);
	const seen = log.next();
	all.push(...seen);
	const problems = [];
	if (r.rc !== 0) problems.push('client failed (exit ' + (r.signal || r.rc) + '): ' + (r.out || r.err));
	const notes = [];
	for (const x of seen) {
		const errs = lib.errorViolations(x);
		const reqErrs = errs.filter((v) => !Array.isArray(v.location) || v.location[0] !== 'response');
		if (reqErrs.length) problems.push('Prism rejected the request: ' + lib.describeEntry(x));
		else if (x.status >= 400) problems.push('error answer: ' + lib.describeEntry(x));
		// Prism also checks its own answer: where GitHub's example breaks
		// GitHub's schema, that is the description's doing, not the client's.
		for (const v of errs.filter((v) => Array.isArray(v.location) && v.location[0] === 'response')) {
			notes.push('the description\'s own example breaks its schema (' + x.method + ' ' + new URL(x.url, api).pathname + '): ' + v.message);
		}
		const pp = new URL(x.url, api).searchParams.get('per_page');
		if (pp !== null && !(Number(pp) >= 1 && Number(pp) <= 100)) problems.push('per_page outside 1..100 (the description says max 100): ' + x.url);
	}
	if (seen.length !== want.length) {
		problems.push('expected ' + want.length + ' request(s), saw ' + seen.length + ': ' + seen.map(lib.describeEntry).join('; '));
	} else {
		want.forEach((w, i) => {
			const x = seen[i];
			const path = new URL(x.url, api).pathname;
			if (x.method !== w.method || !w.path.test(path) || !w.status.includes(x.status)) {
				problems.push('request ' + (i + 1) + ': expected ' + w.method + ' ' + w.path + ' -> ' + w.status.join('|') + ', saw ' + lib.describeEntry(x));
			}
		});
	}
	if (r.rc === 0) {
		for (const re of result || []) if (!re.test(r.out)) problems.push('client read the example wrongly: ' + r.out + ' (wanted ' + re + ')');
	}
	const summary = seen.map((x) => x.method + ' ' + x.url + ' -> ' + x.status).join(', ');
	lib.report(problems.length === 0, name + (summary ? ' (' + summary + ')' : ''), problems);
	for (const n of new Set(notes)) lib.note(n);
}

function scopeCases(label, scopePath, prefix, jobRepo, group) {
	const p = (s) => new RegExp('^/' + prefix.replace(/\//g, '\\/') + s + '$');
	const ok200 = [200];
	// github-check's first call: the repository or organization itself.
	check(label + ': check scope (GET the ' + (prefix.startsWith('orgs/') ? 'organization' : 'repository') + ')', scopePath, ['check_scope'],
		[{ method: 'GET', path: p(''), status: ok200 }], [new RegExp('scope ' + prefix.replace(/\//g, '\\/') + ' ok$')]);
	check(label + ': list runners', scopePath, ['list_runners'], [{ method: 'GET', path: p('/actions/runners'), status: ok200 }], EX.runnersList);
	// Prism's example list carries no ETag: the second list is a plain GET again (the
	// conditional one, If-None-Match -> 304, is proven against ghsim through Prism proxy).
	check(label + ': list runners twice (no ETag: no If-None-Match)', scopePath, ['list_runners_twice'],
		[{ method: 'GET', path: p('/actions/runners'), status: ok200 }, { method: 'GET', path: p('/actions/runners'), status: ok200 }],
		[/again n=2 complete=1 same=1 sent=2 not_modified=0$/]);
	check(label + ': get runner', scopePath, ['get_runner', '23'], [{ method: 'GET', path: p('/actions/runners/23'), status: ok200 }], EX.runner);
	check(label + ': delete runner', scopePath, ['delete_runner', '23'], [{ method: 'DELETE', path: p('/actions/runners/23'), status: [204] }], [/deleted 23$/]);
	check(label + ': registration token', scopePath, ['registration_token'], [{ method: 'POST', path: p('/actions/runners/registration-token'), status: [201] }], EX.token);
	check(label + ': remove token', scopePath, ['remove_token'], [{ method: 'POST', path: p('/actions/runners/remove-token'), status: [201] }], EX.removeToken);
	check(label + ': generate JIT config', scopePath, ['generate_jitconfig', 'contract-0123456789ab', String(group.id), 'self-hosted,linux,x64,gpu', '_work'],
		[{ method: 'POST', path: p('/actions/runners/generate-jitconfig'), status: [201] }], EX.jit);
	check(label + ': list runner applications (downloads)', scopePath, ['list_runner_applications'],
		[{ method: 'GET', path: p('/actions/runners/downloads'), status: ok200 }], EX.apps);
	if (group.name) {
		check(label + ': runner group "' + group.name + '" -> id', scopePath, ['runner_group_id', group.name],
			[{ method: 'GET', path: p('/actions/runner-groups'), status: ok200 }], [new RegExp('id=' + group.id + '$')]);
	} else {
		check(label + ': runner group is 1 without asking GitHub', scopePath, ['runner_group_id', 'default'], [], [/id=1$/]);
	}
	const jp = (s) => new RegExp('^/repos/' + jobRepo.replace(/\//g, '\\/') + s + '$');
	check(label + ': get job', scopePath, ['get_job', jobRepo, '399444496'], [{ method: 'GET', path: jp('/actions/jobs/399444496'), status: ok200 }], EX.job);
	check(label + ': list jobs of a run', scopePath, ['list_run_jobs', jobRepo, '29679449'], [{ method: 'GET', path: jp('/actions/runs/29679449/jobs'), status: ok200 }], EX.jobs);
	// the sweep for jobs no webhook brought: the repository's queued runs (Prism's example run)
	check(label + ': list queued runs', scopePath, ['list_runs', jobRepo, 'queued', '100'],
		[{ method: 'GET', path: jp('/actions/runs'), status: ok200 }], EX.runs);
	// webhook.hook_id: the backfill's failed deliveries, the catch-up's deliveries since a time
	// (every status, page by page), and a redelivery
	check(label + ': list failed hook deliveries', scopePath, ['list_failed_deliveries', '12345678'],
		[{ method: 'GET', path: p('/hooks/12345678/deliveries'), status: ok200 }], EX.deliveries);
	check(label + ': list hook deliveries since a time', scopePath, ['list_deliveries_since', '12345678', '0'],
		[{ method: 'GET', path: p('/hooks/12345678/deliveries'), status: ok200 }], EX.deliveries);
	check(label + ': redeliver a hook delivery', scopePath, ['redeliver', '12345678', '12345678'],
		[{ method: 'POST', path: p('/hooks/12345678/deliveries/12345678/attempts'), status: [202] }], [/redelivered 12345678$/]);
}

function main() {
	log.next(); // skip whatever came before (readiness probes)

	// Not vacuous: the same chain must refuse a request that breaks the
	// description (generate-jitconfig without its required labels and group).
	const bad = spawnSync(process.execPath, ['-e', `
		const http = require('http');
		const body = JSON.stringify({ name: 'contract-broken' });
		const req = http.request({ host: '127.0.0.1', port: ${Number(args.port)}, method: 'POST',
			path: '/repos/octo/hello/actions/runners/generate-jitconfig',
			headers: { accept: 'application/vnd.github+json', 'content-type': 'application/json', 'content-length': body.length } },
			(res) => { res.resume(); res.on('end', () => process.exit(0)); });
		req.end(body);`], { timeout: 30000 });
	const badSeen = log.next();
	const b = badSeen[0];
	lib.report(bad.status === 0 && badSeen.length === 1 && b.status === 422 && lib.errorViolations(b).length > 0,
		'self-check: Prism refuses a request that breaks the description (' + (b ? lib.describeEntry(b).slice(0, 300) : 'no request seen') + ')',
		badSeen.map(lib.describeEntry));

	scopeCases('client repo scope', 'octo/hello', 'repos/octo/hello', 'octo/hello', { id: 1 });
	scopeCases('client org scope', 'octo-org', 'orgs/octo-org', 'octo-org/octo-repo', { id: 2, name: 'octo-runner-group' });

	// GitHub App: the installation-token exchange (JWT) and the call that uses it.
	if (args['app-key']) {
		const appArgs = ['--app-id', '1234', '--installation-id', '4242', '--app-key-file', args['app-key']];
		for (const [label, scopePath, prefix] of [['repo', 'octo/hello', 'repos/octo/hello'], ['org', 'octo-org', 'orgs/octo-org']]) {
			check('client ' + label + ' scope, GitHub App: installation token exchange, then registration token', scopePath, ['registration_token'],
				[
					{ method: 'POST', path: /^\/app\/installations\/4242\/access_tokens$/, status: [201] },
					{ method: 'POST', path: new RegExp('^/' + prefix.replace(/\//g, '\\/') + '/actions/runners/registration-token$'), status: [201] },
				],
				EX.token, appArgs);
		}
		const ex = all.filter((x) => /access_tokens$/.test(x.url));
		lib.report(ex.length > 0 && ex.every((x) => x.authorization === 'Bearer'),
			'client: the installation-token exchange authenticates with a Bearer JWT',
			ex.map((x) => x.url + ' Authorization: ' + x.authorization));
	}

	// GitHub's documented request headers, on every request the client made.
	const bad2 = all.filter((x) => !/application\/vnd\.github\+json/.test(x.accept || '') || x.api_version !== '2022-11-28' || !x.user_agent);
	lib.report(all.length > 0 && bad2.length === 0,
		'client: every request (' + all.length + ') sends Accept: application/vnd.github+json, X-GitHub-Api-Version: 2022-11-28 and a User-Agent',
		bad2.map((x) => x.method + ' ' + x.url + ' accept=' + x.accept + ' api_version=' + x.api_version + ' user_agent=' + x.user_agent));

	const c = lib.counts();
	process.exit(c.failed ? 1 : 0);
}

main();
