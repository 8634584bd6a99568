#!/usr/bin/env node
// Independent Bitstring Status List checker for credential-anchor VCs, using
// the published @digitalbazaar/vc-bitstring-status-list `checkStatus`
// (pinned in package.json / package-lock.json) with
// verifyBitstringStatusListCredential: true and verifyMatchingIssuers: true:
// the status list credential is fetched, its DataIntegrityProof
// (eddsa-rdfc-2022) verified with @digitalbazaar/vc against the issuer's
// did:web document, its issuer compared with the VC's issuer, and the bit at
// statusListIndex read.
//
// Offline like verify-vc.mjs (see loader.mjs): contexts only from npm
// packages, did:web only on loopback, and the only other URLs fetched are the
// `statusListCredential` URLs of the input VCs, and only when they are plain
// http on 127.0.0.1 / localhost / [::1] (and, with --api-base, start with
// that base). The fetched list credential's `id` must equal the URL.
//
// This checks STATUS ONLY, not the VC's own proof (use verify-vc.mjs).
//
// Usage: node check-status.mjs [--api-base URL] FILE...
// One JSON line per file:
//   {"file":..., "verified":bool, "status":true|false|null, "error":...}
// (status true = bit set = revoked/suspended; null when not verified), then
// a summary line "check-status: N checked (R set, U unset), F failed".
// Exit 0 iff every file was checked (verified true, whatever its status),
// 1 if any failed / errored, 2 on usage error.
import fs from 'node:fs';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {createOfflineLoader, isLoopbackHttpUrl} from './loader.mjs';

function usage(msg) {
  if(msg) {
    console.error(`check-status: ${msg}`);
  }
  console.error('usage: node check-status.mjs [--api-base URL] FILE...');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {apiBase: null, files: []};
  for(let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if(a === '--api-base') {
      if(i + 1 >= argv.length) {
        usage('--api-base needs a URL');
      }
      opts.apiBase = argv[++i];
    } else if(a.startsWith('--api-base=')) {
      opts.apiBase = a.slice('--api-base='.length);
    } else if(a === '-h' || a === '--help') {
      usage();
    } else if(a === '--') {
      opts.files.push(...argv.slice(i + 1));
      break;
    } else if(a.startsWith('--')) {
      usage(`unknown option ${a}`);
    } else {
      opts.files.push(a);
    }
  }
  if(opts.files.length === 0) {
    usage('no FILE given');
  }
  if(opts.apiBase !== null) {
    if(!isLoopbackHttpUrl(opts.apiBase)) {
      usage('--api-base must be an http URL on 127.0.0.1, localhost or ' +
        `[::1]: ${opts.apiBase}`);
    }
    // prefix match on a path boundary: base "http://h:1/api" admits
    // "http://h:1/api/..." but not "http://h:1/apix/..."
    opts.apiBase = opts.apiBase.replace(/\/+$/, '') + '/';
  }
  return opts;
}

// collect human-readable messages from a result / error (incl. causes)
function messages(x, out = [], seen = new Set()) {
  if(x === null || x === undefined || typeof x !== 'object' || seen.has(x)) {
    return out;
  }
  seen.add(x);
  if(x instanceof Error || typeof x.message === 'string') {
    // the library wraps errors as "...; reason: <cause message>": skip a
    // message already contained in one collected before
    if(x.message && !out.some(m => m.includes(x.message))) {
      out.push(x.message);
    }
  }
  for(const key of ['errors', 'error', 'results', 'cause']) {
    const v = x[key];
    if(Array.isArray(v)) {
      v.forEach(e => messages(e, out, seen));
    } else if(v && typeof v === 'object') {
      messages(v, out, seen);
    }
  }
  return out;
}

function statusEntries(credential) {
  const cs = credential.credentialStatus;
  return (Array.isArray(cs) ? cs : [cs]).filter(
    e => e && typeof e === 'object');
}

async function checkFile(file, opts) {
  let credential;
  try {
    credential = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch(e) {
    return {verified: false, status: null,
      error: `cannot read/parse: ${e.message}`};
  }
  if(!credential || typeof credential !== 'object' ||
    Array.isArray(credential)) {
    return {verified: false, status: null, error: 'not a JSON object'};
  }
  const entries = statusEntries(credential);
  if(entries.length === 0) {
    return {verified: false, status: null, error: 'no credentialStatus'};
  }
  const urls = new Set();
  for(const e of entries) {
    const url = e.statusListCredential;
    if(typeof url !== 'string' || !isLoopbackHttpUrl(url)) {
      return {verified: false, status: null, error:
        `statusListCredential ${JSON.stringify(url)} is not an http URL ` +
        'on 127.0.0.1, localhost or [::1] (offline checker)'};
    }
    if(opts.apiBase !== null && !url.startsWith(opts.apiBase)) {
      return {verified: false, status: null, error:
        `statusListCredential ${url} is not under --api-base ` +
        opts.apiBase};
    }
    urls.add(url);
  }
  // a fresh loader per file: only this VC's list URLs may be fetched
  const {documentLoader} = createOfflineLoader({httpUrls: u => urls.has(u)});
  try {
    const suite = new DataIntegrityProof({cryptosuite});
    const result = await checkStatus({
      credential, documentLoader, suite,
      verifyBitstringStatusListCredential: true,
      verifyMatchingIssuers: true
    });
    if(result.verified !== true) {
      const msgs = messages(result);
      return {verified: false, status: null,
        error: msgs.join('; ') || 'verified: false'};
    }
    const results = Array.isArray(result.results) ? result.results : [];
    if(results.length === 0 ||
      !results.every(r => r && r.verified === true &&
        typeof r.status === 'boolean')) {
      return {verified: false, status: null,
        error: 'checkStatus returned no per-entry status'};
    }
    // several entries (e.g. revocation + suspension): set if any is set
    const status = results.some(r => r.status === true);
    return {verified: true, status, error: null};
  } catch(e) {
    const msgs = messages(e);
    return {verified: false, status: null,
      error: `exception: ${msgs.join('; ') || String(e)}`};
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let set = 0;
  let unset = 0;
  let failed = 0;
  for(const file of opts.files) {
    const r = await checkFile(file, opts);
    if(r.verified === true) {
      if(r.status) {
        set++;
      } else {
        unset++;
      }
    } else {
      failed++;
    }
    process.stdout.write(JSON.stringify({
      file, verified: r.verified, status: r.status, error: r.error
    }) + '\n');
  }
  process.stdout.write(`check-status: ${set + unset} checked ` +
    `(${set} set, ${unset} unset), ${failed} failed\n`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch(e => {
  console.error(`check-status: fatal: ${e && e.stack || e}`);
  process.exit(2);
});
