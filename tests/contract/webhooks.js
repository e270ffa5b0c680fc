#!/usr/bin/env node
// Proves that the workflow_job webhooks ghsim sends are ones GitHub could
// send: each delivery is validated with ajv against @octokit/webhooks-schemas
// (the schema of its action and the event's oneOf), carries GitHub's headers,
// and is signed with X-Hub-Signature-256 = HMAC-SHA256(secret, raw body).
// The validator proves itself first: GitHub's real examples from
// @octokit/webhooks-examples pass (one stale 2021 example fails on exactly
// the fields added since), deliberately broken payloads and signatures fail,
// and the HMAC matches GitHub's documented test vector.
// The deliveries come from a real run: ghsim's runner package (downloaded
// through the API, JIT-configured) takes a queued job in repository and in
// organization scope. Everything stays on 127.0.0.1.
//
// usage: webhooks.js [--ghsim-port PORT --work DIR]   (without ghsim: self-checks only)
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');
const lib = require('./lib');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const TOKEN = 'ghp_contractFakeToken0123456789abcdefABCD';
const SECRET = 'contract webhook secret ' + crypto.randomBytes(8).toString('hex');

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
// Without the root oneOf over every event: ajv would compile all of them
// (seconds) when only workflow_job's definitions are needed.
const whSchema = Object.assign({}, require('@octokit/webhooks-schemas/schema.json'));
delete whSchema.oneOf;
ajv.addSchema(whSchema, 'wh');

function validator(action) {
	return ajv.getSchema('wh#/definitions/workflow_job$' + action);
}
const eventValidator = ajv.getSchema('wh#/definitions/workflow_job_event');

function errorsOf(v) {
	return (v.errors || []).map((x) => {
		let m = (x.instancePath || '/') + ' ' + x.message;
		if (x.params && x.params.allowedValues) m += ' ' + JSON.stringify(x.params.allowedValues);
		if (x.params && x.params.additionalProperty) m += ': ' + x.params.additionalProperty;
		return m;
	});
}

// Validates one payload against its action's schema and the event's oneOf.
function validate(payload) {
	const action = payload && payload.action;
	const v = typeof action === 'string' ? validator(action) : null;
	if (!v) return ['no workflow_job schema for action ' + JSON.stringify(action)];
	const errs = [];
	if (!v(payload)) errs.push(...errorsOf(v));
	if (!eventValidator(payload)) errs.push('workflow_job_event (oneOf): ' + errorsOf(eventValidator).slice(0, 3).join('; '));
	return errs;
}

function signature(secret, body) {
	return 'sha256=' + crypto.createHmac('sha256', secret).update(body).digest('hex');
}

function signatureOk(secret, body, header) {
	if (typeof header !== 'string') return false;
	const want = Buffer.from(signature(secret, body));
	const got = Buffer.from(header);
	return want.length === got.length && crypto.timingSafeEqual(want, got);
}

function selfChecks() {
	// GitHub's documented test vector (docs: validating webhook deliveries).
	lib.report(
		signature("It's a Secret to Everybody", 'Hello, World!') === 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
		'self-check: HMAC-SHA256 matches GitHub\'s documented test vector');
	lib.report(!signatureOk('s', Buffer.from('{"a":1}'), signature('s', '{"a":2}')) && !signatureOk('s', Buffer.from('x'), undefined) &&
		signatureOk('s', Buffer.from('x'), signature('s', 'x')),
		'self-check: the signature check refuses a tampered body and a missing header');

	const index = require('@octokit/webhooks-examples/api.github.com/index.json');
	const entry = index.find((e) => e.name === 'workflow_job');
	const examples = entry ? entry.examples : [];
	lib.report(examples.length === 8, 'self-check: @octokit/webhooks-examples has the 8 real workflow_job payloads (' + examples.length + ')');
	// One example is from 2021, before these fields became required; with the
	// pinned packages it must fail on exactly them (so the validator does read
	// required fields), and every other example must pass.
	const STALE_ID = 2832853555;
	const STALE_MISSING = [
		'/repository custom_properties', '/repository is_template', '/repository topics', '/repository visibility',
		'/repository web_commit_signoff_required', '/workflow_job created_at', '/workflow_job head_branch',
		'/workflow_job run_attempt', '/workflow_job workflow_name',
	];
	examples.forEach((ex, i) => {
		const name = 'example ' + (i + 1) + ' (' + ex.action + ', job ' + ex.workflow_job.id + ', status ' + ex.workflow_job.status + ')';
		const v = validator(ex.action);
		const ok = v(ex);
		if (ex.workflow_job.id === STALE_ID) {
			const missing = (v.errors || [])
				.filter((x) => x.keyword === 'required')
				.map((x) => x.instancePath + ' ' + x.params.missingProperty)
				.sort();
			const others = (v.errors || []).filter((x) => x.keyword !== 'required');
			lib.report(!ok && others.length === 0 && JSON.stringify(missing) === JSON.stringify(STALE_MISSING),
				'self-check: stale real ' + name + ' fails on exactly the 9 fields added since 2021', errorsOf(v));
		} else {
			lib.report(ok && eventValidator(ex), 'self-check: real ' + name + ' is valid', errorsOf(v));
		}
	});

	const good = examples.find((e) => e.action === 'queued' && e.workflow_job.status === 'queued');
	const broken = [
		['status "completed" in a queued event', (p) => { p.workflow_job.status = 'completed'; }],
		['workflow_job without labels', (p) => { delete p.workflow_job.labels; }],
		['job id as a string', (p) => { p.workflow_job.id = String(p.workflow_job.id); }],
		['an unknown top-level field', (p) => { p.surprise = true; }],
		['action "started" (no such action)', (p) => { p.action = 'started'; }],
	];
	for (const [what, mutate] of broken) {
		const p = JSON.parse(JSON.stringify(good));
		mutate(p);
		const errs = validate(p);
		lib.report(errs.length > 0, 'self-check: a broken payload (' + what + ') is refused' + (errs.length ? ': ' + errs[0] : ''));
	}
	return good;
}

// --- deliveries from ghsim ---------------------------------------------------

function startReceiver() {
	const deliveries = [];
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const body = Buffer.concat(chunks);
			deliveries.push({ method: req.method, url: req.url, headers: req.headers, body, at: Date.now() });
			res.writeHead(204).end();
		});
	});
	return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, deliveries, port: server.address().port })));
}

function api(port, method, p, body) {
	return lib.request({
		port, method, path: p, body,
		headers: { accept: 'application/vnd.github+json', authorization: 'Bearer ' + TOKEN, 'x-github-api-version': '2022-11-28', 'user-agent': 'runnerd-contract' },
	});
}

async function waitFor(cond, ms) {
	const end = Date.now() + ms;
	while (Date.now() < end) {
		if (cond()) return true;
		await lib.sleep(100);
	}
	return cond();
}

// Downloads and unpacks ghsim's runner package once.
async function runnerPackage(port, work) {
	const r = await api(port, 'GET', '/repos/octo/hello/actions/runners/downloads');
	if (r.status !== 200 || !Array.isArray(r.json)) throw new Error('downloads: ' + r.status);
	const app = r.json.find((a) => a.os === 'linux' && a.architecture === 'x64');
	if (!app) throw new Error('downloads: no linux/x64 package');
	const u = new URL(app.download_url);
	if (u.hostname !== '127.0.0.1') throw new Error('downloads: package is not local: ' + app.download_url);
	const pkg = await lib.request({ port: Number(u.port), path: u.pathname + u.search });
	if (pkg.status !== 200) throw new Error('package download: ' + pkg.status);
	const sum = crypto.createHash('sha256').update(pkg.body).digest('hex');
	if (app.sha256_checksum && app.sha256_checksum !== sum) throw new Error('package sha256 mismatch');
	const dir = path.join(work, 'runner-pkg');
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(path.join(work, app.filename), pkg.body);
	const t = spawnSync('tar', ['-xzf', path.join(work, app.filename), '-C', dir]);
	if (t.status !== 0) throw new Error('tar: ' + t.stderr);
	return dir;
}

// One job through a real (simulated) runner: queued -> in_progress -> completed.
async function runJob(port, work, pkgDir, scope, repo, label, rx) {
	const name = 'contract-' + crypto.randomBytes(6).toString('hex');
	const labels = ['self-hosted', 'linux', 'x64', label];
	const jit = await api(port, 'POST', '/' + scope + '/actions/runners/generate-jitconfig',
		{ name, runner_group_id: 1, labels, work_folder: '_work' });
	if (jit.status !== 201 || !jit.json || !jit.json.encoded_jit_config) throw new Error('generate-jitconfig: ' + jit.status + ' ' + jit.body);
	const q = await lib.request({ port, method: 'POST', path: '/_ghsim/jobs', body: { repo, labels: ['self-hosted', label], duration: 1, workflow: 'contract', event: 'push' } });
	if (q.status < 200 || q.status > 299 || !q.json || !q.json.id) throw new Error('queue job: ' + q.status + ' ' + q.body);
	const jobId = q.json.id;
	const dir = path.join(work, name);
	fs.cpSync(pkgDir, dir, { recursive: true });
	const env = Object.assign({}, process.env, { ACTIONS_RUNNER_INPUT_JITCONFIG: jit.json.encoded_jit_config, RUNNER_ALLOW_RUNASROOT: '1' });
	const out = fs.openSync(path.join(work, name + '.log'), 'w');
	// Its own process group, so the runner and anything it started can be
	// stopped together.
	const child = spawn('sh', ['./run.sh'], { cwd: dir, env, stdio: ['ignore', out, out], detached: true });
	let exited = null;
	child.on('exit', (code, sig) => { exited = sig || code; });
	const done = () => rx.deliveries.some((d) => {
		try {
			const p = JSON.parse(d.body.toString('utf8'));
			return p.action === 'completed' && p.workflow_job && p.workflow_job.id === jobId;
		} catch (e) {
			return false;
		}
	});
	await waitFor(() => done() && exited !== null, 30000);
	try {
		process.kill(-child.pid, 'SIGTERM');
	} catch (e) { /* the group is gone already */ }
	fs.closeSync(out);
	return { jobId, name, exited, log: path.join(work, name + '.log') };
}

function checkDeliveries(rx, jobId, label, wantOrg) {
	const mine = rx.deliveries
		.map((d) => {
			let p = null;
			try {
				p = JSON.parse(d.body.toString('utf8'));
			} catch (e) { /* reported below */ }
			return { d, p };
		})
		.filter((x) => x.p && x.p.workflow_job && x.p.workflow_job.id === jobId);
	for (const action of ['queued', 'in_progress', 'completed']) {
		const got = mine.filter((x) => x.p.action === action);
		const problems = [];
		if (got.length !== 1) problems.push('expected one ' + action + ' delivery for job ' + jobId + ', got ' + got.length);
		for (const { d, p } of got) {
			const h = d.headers;
			if (d.method !== 'POST') problems.push('method ' + d.method);
			if (h['x-github-event'] !== 'workflow_job') problems.push('X-GitHub-Event: ' + h['x-github-event']);
			if (!h['x-github-delivery']) problems.push('no X-GitHub-Delivery');
			if (!/^application\/json/.test(h['content-type'] || '')) problems.push('Content-Type: ' + h['content-type']);
			if (!/^GitHub-Hookshot\//.test(h['user-agent'] || '')) problems.push('User-Agent: ' + h['user-agent'] + ' (GitHub sends GitHub-Hookshot/...)');
			if (!signatureOk(SECRET, d.body, h['x-hub-signature-256'])) problems.push('X-Hub-Signature-256 does not match HMAC-SHA256 of the body: ' + h['x-hub-signature-256']);
			problems.push(...validate(p));
			const st = p.workflow_job.status;
			const okStatus = { queued: ['queued', 'waiting'], in_progress: ['in_progress'], completed: ['completed'] }[action];
			if (!okStatus.includes(st)) problems.push('workflow_job.status ' + st + ' in a ' + action + ' event');
			if (action !== 'queued' && !(p.workflow_job.runner_id > 0 && p.workflow_job.runner_name)) problems.push('no runner_id/runner_name in ' + action);
			if (action === 'completed' && !p.workflow_job.conclusion) problems.push('completed without conclusion');
			if (wantOrg && !p.organization) problems.push('org-scope job without "organization"');
		}
		lib.report(problems.length === 0, 'ghsim webhook ' + label + ': workflow_job ' + action + ' is valid under @octokit/webhooks-schemas and correctly signed', problems);
	}
	const ids = new Set(mine.map((x) => x.d.headers['x-github-delivery']));
	lib.report(ids.size === mine.length, 'ghsim webhook ' + label + ': every delivery has its own X-GitHub-Delivery', [...ids].join(', '));
}

// A job cancelled while queued (POST /_ghsim/jobs/{id}/cancel): its completed
// delivery, with no runner, is one GitHub could send.
async function cancelledCheck(port, rx) {
	const q = await lib.request({ port, method: 'POST', path: '/_ghsim/jobs', body: { repo: 'octo/hello', labels: ['self-hosted', 'contract-nobody'], duration: 1 } });
	const jobId = q.json && q.json.id;
	const c = await lib.request({ port, method: 'POST', path: '/_ghsim/jobs/' + jobId + '/cancel', body: {} });
	const find = () => rx.deliveries.map((d) => {
		try {
			return { d, p: JSON.parse(d.body.toString('utf8')) };
		} catch (e) {
			return { d, p: null };
		}
	}).filter((x) => x.p && x.p.action === 'completed' && x.p.workflow_job && x.p.workflow_job.id === jobId);
	const problems = [];
	try {
		await waitFor(() => find().length === 1, 10000);
	} catch (e) {
		problems.push('no completed delivery for the cancelled job ' + jobId + ' (cancel: ' + c.status + ')');
	}
	for (const { d, p } of find()) {
		if (!signatureOk(SECRET, d.body, d.headers['x-hub-signature-256'])) problems.push('bad signature');
		problems.push(...validate(p));
		if (p.workflow_job.conclusion !== 'cancelled') problems.push('conclusion ' + p.workflow_job.conclusion);
	}
	lib.report(problems.length === 0, 'ghsim webhook: a job cancelled while queued sends a completed (cancelled) delivery valid under @octokit/webhooks-schemas', problems);
}

async function ghsimChecks(port, work) {
	const rx = await startReceiver();
	try {
		const reg = await lib.request({ port, method: 'POST', path: '/_ghsim/webhook', body: { url: 'http://127.0.0.1:' + rx.port + '/webhook', secret: SECRET } });
		if (reg.status < 200 || reg.status > 299) throw new Error('register webhook: ' + reg.status);
		const pkg = await runnerPackage(port, work);
		const cases = [
			['repo scope', 'repos/octo/hello', 'octo/hello', 'contract-repo', false],
			['org scope', 'orgs/octo-org', 'octo-org/octo-repo', 'contract-org', true],
		];
		// Both jobs at once: each waits on a runner's poll and heartbeat.
		const runs = await Promise.all(cases.map(([label, scope, repo, jobLabel]) =>
			runJob(port, work, pkg, scope, repo, jobLabel, rx).catch((e) => ({ error: e }))));
		cases.forEach(([label, , , , wantOrg], i) => {
			const run = runs[i];
			if (run.error) {
				lib.report(false, 'ghsim webhook ' + label + ': a job runs through a runner', [run.error.message]);
				return;
			}
			let tail = '';
			try {
				tail = fs.readFileSync(run.log, 'utf8').slice(-1500);
			} catch (e) { /* no log */ }
			lib.report(run.exited === 0, 'ghsim webhook ' + label + ': job ' + run.jobId + ' ran on ephemeral runner ' + run.name + ' (exit ' + run.exited + ')', tail);
			checkDeliveries(rx, run.jobId, label, wantOrg);
		});
		await cancelledCheck(port, rx);
	} finally {
		rx.server.close();
		await lib.request({ port, method: 'POST', path: '/_ghsim/webhook', body: { url: '', secret: '' } }).catch(() => {});
	}
}

async function main() {
	selfChecks();
	if (args['ghsim-port']) {
		try {
			await ghsimChecks(Number(args['ghsim-port']), args.work || fs.mkdtempSync('/tmp/contract-wh-'));
		} catch (e) {
			lib.report(false, 'ghsim webhooks: setup', [e.stack || e.message]);
		}
	}
	process.exit(lib.counts().failed ? 1 : 0);
}

main();
