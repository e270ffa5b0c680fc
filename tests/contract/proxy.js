#!/usr/bin/env node
// Rewriting HTTP proxy that sits in front of Prism in the contract tests.
// Prism only knows the media type the description lists (application/json)
// and answers 406 to GitHub's own "application/vnd.github+json", so this
// proxy rewrites Accept before forwarding; what runnerd sends to GitHub stays
// untouched. It also re-roots every URL in a Link header on this proxy, or
// drops Link in front of Prism mock (its examples point at
// https://api.github.com, which must never be contacted), and it logs every
// exchange as one JSON line (status, sl-violations) for the checks to read.
// It must never forward to anything but the 127.0.0.1 upstream it was given,
// never listen beyond 127.0.0.1, and never log Authorization or token values.
// Node standard library only.
'use strict';

const http = require('http');
const fs = require('fs');

function usage() {
	process.stderr.write(
		'usage: proxy.js --upstream http://127.0.0.1:PORT --port-file FILE --log FILE [--drop-links]\n');
	process.exit(2);
}

const args = { dropLinks: false };
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	if (a === '--upstream') args.upstream = process.argv[++i];
	else if (a === '--port-file') args.portFile = process.argv[++i];
	else if (a === '--log') args.log = process.argv[++i];
	else if (a === '--drop-links') args.dropLinks = true;
	else usage();
}
if (!args.upstream || !args.portFile || !args.log) usage();

const upstream = new URL(args.upstream);
// The whole point is to keep test traffic on this machine.
if (upstream.protocol !== 'http:' || upstream.hostname !== '127.0.0.1') {
	process.stderr.write('proxy.js: upstream must be http://127.0.0.1:PORT\n');
	process.exit(2);
}

const MAX_BODY = 16 * 1024 * 1024;
let seq = 0;
let origin = ''; // http://127.0.0.1:PORT of this proxy, known once listening

function logLine(entry) {
	// Synchronous on purpose: the entry is on disk before the client gets its
	// answer, so a checker that runs after the client finished sees it.
	fs.appendFileSync(args.log, JSON.stringify(entry) + '\n');
}

function rewriteAccept(value) {
	if (!value) return value;
	// "application/vnd.github+json", "application/vnd.github.v3+json", ... -> JSON
	return value
		.split(',')
		.map((part) => (/^\s*application\/vnd\.github[^;,]*/i.test(part) ? 'application/json' : part.trim()))
		.filter((part, i, all) => all.indexOf(part) === i)
		.join(', ');
}

// Every URL in a Link header is re-rooted on this proxy (path and query kept).
function rewriteLinkGeneric(value) {
	return value.replace(/<([^>]*)>/g, (m, u) => {
		try {
			const parsed = new URL(u);
			return '<' + origin + parsed.pathname + parsed.search + '>';
		} catch (e) {
			return m;
		}
	});
}

function parseViolations(value) {
	if (!value) return null;
	try {
		return JSON.parse(value);
	} catch (e) {
		return [{ message: String(value) }];
	}
}

function bodyForLog(buf, contentType) {
	if (!buf || buf.length === 0) return undefined;
	const text = buf.toString('utf8', 0, Math.min(buf.length, 4096));
	if (contentType && /json/i.test(contentType)) {
		try {
			return redact(JSON.parse(buf.toString('utf8')));
		} catch (e) {
			/* fall through: log the text */
		}
	}
	return text;
}

// Tokens and JIT configs are fake here, but the rule is the rule.
function redact(v) {
	if (Array.isArray(v)) return v.map(redact);
	if (v && typeof v === 'object') {
		const out = {};
		for (const k of Object.keys(v)) {
			out[k] = /^(token|encoded_jit_config)$/.test(k) ? '<redacted>' : redact(v[k]);
		}
		return out;
	}
	return v;
}

const server = http.createServer((req, res) => {
	const chunks = [];
	let size = 0;
	let tooBig = false;
	req.on('data', (c) => {
		size += c.length;
		if (size > MAX_BODY) tooBig = true;
		else chunks.push(c);
	});
	req.on('end', () => {
		const id = ++seq;
		const started = Date.now();
		const entry = {
			seq: id,
			method: req.method,
			url: req.url,
			accept: req.headers['accept'] || null,
			user_agent: req.headers['user-agent'] || null,
			api_version: req.headers['x-github-api-version'] || null,
			authorization: req.headers['authorization'] ? req.headers['authorization'].split(' ')[0] : null,
			if_none_match: req.headers['if-none-match'] || null, // an ETag: no secret
		};
		if (tooBig) {
			entry.status = 413;
			entry.error = 'request body too large';
			logLine(entry);
			res.writeHead(413).end();
			return;
		}
		const body = Buffer.concat(chunks);
		entry.request_content_type = req.headers['content-type'] || null;
		entry.request_body = bodyForLog(body, req.headers['content-type']);

		const headers = Object.assign({}, req.headers);
		headers['host'] = upstream.host;
		if (headers['accept']) headers['accept'] = rewriteAccept(headers['accept']);
		delete headers['connection'];
		delete headers['keep-alive'];
		delete headers['transfer-encoding'];
		headers['content-length'] = String(body.length);
		if (body.length === 0 && !['POST', 'PUT', 'PATCH'].includes(req.method)) delete headers['content-length'];

		const up = http.request(
			{
				host: '127.0.0.1',
				port: upstream.port,
				method: req.method,
				path: req.url,
				headers,
			},
			(ures) => {
				const rchunks = [];
				ures.on('data', (c) => rchunks.push(c));
				ures.on('end', () => {
					const rbody = Buffer.concat(rchunks);
					const out = Object.assign({}, ures.headers);
					delete out['connection'];
					delete out['keep-alive'];
					delete out['transfer-encoding'];
					if (out['link']) {
						// Prism's mock examples link to pages of a placeholder
						// https://api.github.com/resource, beyond the example's own
						// total_count: nothing a client may follow.
						if (args.dropLinks) delete out['link'];
						else out['link'] = rewriteLinkGeneric(out['link']);
					}
					out['content-length'] = String(rbody.length);
					entry.status = ures.statusCode;
					entry.violations = parseViolations(ures.headers['sl-violations']);
					entry.response_content_type = ures.headers['content-type'] || null;
					entry.etag = ures.headers['etag'] || null;
					entry.link = out['link'] || null;
					entry.ms = Date.now() - started;
					if (ures.statusCode >= 300 || entry.violations) {
						entry.response_body = bodyForLog(rbody, ures.headers['content-type']);
					}
					logLine(entry);
					res.writeHead(ures.statusCode, out);
					res.end(req.method === 'HEAD' ? undefined : rbody);
				});
				ures.on('error', (err) => {
					entry.status = 502;
					entry.error = 'upstream: ' + err.message;
					logLine(entry);
					if (!res.headersSent) res.writeHead(502);
					res.end();
				});
			});
		up.on('error', (err) => {
			entry.status = 502;
			entry.error = 'upstream: ' + err.message;
			logLine(entry);
			res.writeHead(502, { 'content-type': 'application/json' });
			res.end(JSON.stringify({ message: 'proxy: upstream unreachable' }));
		});
		up.end(body);
	});
});

server.listen(0, '127.0.0.1', () => {
	const port = server.address().port;
	origin = 'http://127.0.0.1:' + port;
	const tmp = args.portFile + '.tmp';
	fs.writeFileSync(tmp, String(port) + '\n');
	fs.renameSync(tmp, args.portFile);
});

// Nothing to flush: every log line is written synchronously.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
