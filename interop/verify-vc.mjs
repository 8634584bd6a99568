#!/usr/bin/env node
// Independent verifier for credential-anchor VCs, using the published
// digitalbazaar libraries (pinned in package.json / package-lock.json):
//   @digitalbazaar/vc verifyCredential
//   + @digitalbazaar/data-integrity DataIntegrityProof
//   + @digitalbazaar/eddsa-rdfc-2022-cryptosuite
// fully offline (see loader.mjs): contexts from npm packages, did:web only on
// loopback.
//
// Usage: node verify-vc.mjs --expect valid|invalid [--now ISO] [--skip-status]
//                           FILE...
// One JSON line per file: {"file":..., "verified":bool, "error":...}
// then a summary line "verify-vc: N passed, M failed".
// Exit code 0 iff every file's result matches --expect (invalid = verified
// false or an exception), 1 otherwise, 2 on usage error.
import fs from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {createOfflineLoader} from './loader.mjs';

function usage(msg) {
  if(msg) {
    console.error(`verify-vc: ${msg}`);
  }
  console.error('usage: node verify-vc.mjs --expect valid|invalid ' +
    '[--now ISO-DATETIME] [--skip-status] FILE...');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {expect: null, now: undefined, skipStatus: false, files: []};
  for(let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if(a === '--expect') {
      opts.expect = argv[++i];
    } else if(a.startsWith('--expect=')) {
      opts.expect = a.slice('--expect='.length);
    } else if(a === '--now') {
      opts.now = argv[++i];
    } else if(a === '--skip-status') {
      opts.skipStatus = true;
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
  if(opts.expect !== 'valid' && opts.expect !== 'invalid') {
    usage('--expect must be "valid" or "invalid"');
  }
  if(opts.files.length === 0) {
    usage('no FILE given');
  }
  if(opts.now !== undefined && Number.isNaN(Date.parse(opts.now))) {
    usage(`--now: not a date-time: ${opts.now}`);
  }
  return opts;
}

// collect human-readable messages from a verifyCredential result / error
function messages(x, out = [], seen = new Set()) {
  if(x === null || x === undefined || typeof x !== 'object' || seen.has(x)) {
    return out;
  }
  seen.add(x);
  if(x instanceof Error || typeof x.message === 'string') {
    if(x.message && !out.includes(x.message)) {
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

async function verifyFile(file, opts, documentLoader) {
  let credential;
  try {
    credential = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch(e) {
    return {verified: false, error: `cannot read/parse: ${e.message}`};
  }
  if(!credential || typeof credential !== 'object' ||
    Array.isArray(credential)) {
    return {verified: false, error: 'not a JSON object'};
  }
  try {
    const suite = new DataIntegrityProof({cryptosuite});
    const args = {credential, suite, documentLoader};
    if(opts.now !== undefined) {
      args.now = opts.now;
    }
    if(opts.skipStatus) {
      // status is out of scope for these checks; say so explicitly
      args.checkStatus = async () => ({verified: true, skipped: true});
    }
    const result = await vc.verifyCredential(args);
    if(result.verified === true) {
      // belt and braces: every proof result must be verified too
      const proofResults = result.results || [];
      if(proofResults.length === 0 ||
        !proofResults.every(r => r.verified === true)) {
        return {verified: false, error: 'no verified proof result'};
      }
      return {verified: true, error: null};
    }
    const msgs = messages(result);
    return {verified: false, error: msgs.join('; ') || 'verified: false'};
  } catch(e) {
    const msgs = messages(e);
    return {verified: false,
      error: `exception: ${msgs.join('; ') || String(e)}`};
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const {documentLoader} = createOfflineLoader();
  let passed = 0;
  let failed = 0;
  for(const file of opts.files) {
    const r = await verifyFile(file, opts, documentLoader);
    const ok = opts.expect === 'valid' ? r.verified === true :
      r.verified !== true;
    if(ok) {
      passed++;
    } else {
      failed++;
    }
    process.stdout.write(JSON.stringify({
      file, verified: r.verified, error: r.error,
      expect: opts.expect, ok
    }) + '\n');
  }
  process.stdout.write(
    `verify-vc: ${passed} passed, ${failed} failed\n`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch(e => {
  console.error(`verify-vc: fatal: ${e && e.stack || e}`);
  process.exit(2);
});
