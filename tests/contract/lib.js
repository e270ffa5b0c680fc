// Shared helpers of the contract checks: TAP-like result lines, the proxy's
// JSON-lines log, and a small HTTP client. Only ever talks to 127.0.0.1.
'use strict';

const fs = require('fs');
const http = require('http');

let failed = 0;
let passed = 0;

// One line per case, as run.sh counts them: "ok - NAME" / "not ok - NAME".
function report(ok, name, details) {
	if (ok) {
		passed++;
		process.stdout.write('ok - ' + name + '\n');
	} else {
		failed++;
		process.stdout.write('not ok - ' + name + '\n');
		for (const d of [].concat(details || [])) {
			for (const line of String(d).split('\n')) process.stdout.write('#   ' + line + '\n');
		}
	}
	return ok;
}

function note(msg) {
	process.stdout.write('# ' + msg + '\n');
}

function counts() {
	return { passed, failed };
}

// Reads the proxy's log from where the previous read stopped.
class ProxyLog {
	constructor(path) {
		this.path = path;
		this.offset = 0;
	}
	next() {
		let data = '';
		try {
			const fd = fs.openSync(this.path, 'r');
			const size = fs.fstatSync(fd).size;
			const buf = Buffer.alloc(size - this.offset);
			fs.readSync(fd, buf, 0, buf.length, this.offset);
			fs.closeSync(fd);
			this.offset = size;
			data = buf.toString('utf8');
		} catch (e) {
			if (e.code !== 'ENOENT') throw e;
		}
		return data
			.split('\n')
			.filter((l) => l.trim() !== '')
			.map((l) => JSON.parse(l));
	}
}

function describeEntry(x) {
	let s = x.method + ' ' + x.url + ' -> ' + x.status;
	if (x.violations) s += ' sl-violations: ' + JSON.stringify(x.violations);
	if (x.error) s += ' (' + x.error + ')';
	if (x.response_body !== undefined && x.status >= 400) s += ' body: ' + JSON.stringify(x.response_body).slice(0, 500);
	return s;
}

// Only the violations Prism marks as errors break the contract; it reports an
// undocumented 4xx status as a warning (GitHub documents few of its errors).
function errorViolations(x) {
	return (x.violations || []).filter((v) => v.severity === undefined || v.severity === 'Error' || v.severity === 0);
}

// request({port, method, path, headers, body}) -> {status, headers, body(Buffer), json}
function request(opts) {
	return new Promise((resolve, reject) => {
		const body = opts.body === undefined ? null : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
		const headers = Object.assign({}, opts.headers || {});
		if (body) {
			if (!headers['content-type']) headers['content-type'] = 'application/json';
			headers['content-length'] = String(body.length);
		}
		const req = http.request(
			{ host: '127.0.0.1', port: opts.port, method: opts.method || 'GET', path: opts.path, headers, timeout: opts.timeout || 30000 },
			(res) => {
				const chunks = [];
				res.on('data', (c) => chunks.push(c));
				res.on('end', () => {
					const buf = Buffer.concat(chunks);
					let json;
					try {
						json = buf.length ? JSON.parse(buf.toString('utf8')) : undefined;
					} catch (e) {
						json = undefined;
					}
					resolve({ status: res.statusCode, headers: res.headers, body: buf, json });
				});
				res.on('error', reject);
			});
		req.on('timeout', () => req.destroy(new Error('timeout')));
		req.on('error', reject);
		req.end(body || undefined);
	});
}

function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

module.exports = { report, note, counts, ProxyLog, describeEntry, errorViolations, request, sleep };
