#!/usr/bin/env node
// Independent verifier for credential-anchor VCs, using the published
// digitalbazaar libraries (pinned in package.json / package-lock.json):
//   @digitalbazaar/vc verifyCredential
//   + @digitalbazaar/data-integrity DataIntegrityProof
//   + @digitalbazaar/eddsa-rdfc-2022-cryptosuite
// fully offline (see loader.mjs): contexts from npm packages, did:web only on
// loopback.
//
// Status (`credentialStatus`), by default CHECKED: verifyCredential gets a
// `checkStatus` that runs `checkStatus` of
// @digitalbazaar/vc-bitstring-status-list (verifyBitstringStatusListCredential
// and verifyMatchingIssuers true) via bitstring-status.mjs, shared with
// check-status.mjs: the list credential is fetched only from its
// `statusListCredential` URL and only if that is plain http on 127.0.0.1 /
// localhost / [::1]; its id must equal the URL, its proof must verify and its
// issuer must equal the VC's. Every entry must be a BitstringStatusListEntry
// with statusPurpose "revocation" or "suspension". A set bit makes the VC
// INVALID ("revoked (status list bit set)" / "suspended (...)"):
// @digitalbazaar/vc only looks at the status result's `verified`, and the
// library reports a set bit as {verified: true, status: true}, so the result
// is mapped to {verified: false} here. Unreachable / unverifiable list ->
// invalid. The list credential's validFrom/validUntil are checked against the
// real clock (the library passes no `now`), even with --now.
// --skip-status: explicitly do not check status (credentialStatus accepted,
// reported as "skipped"); only the proof and the VCDM checks remain.
//
// Usage: node verify-vc.mjs --expect valid|invalid [--now ISO] [--skip-status]
//                           FILE...
// One JSON line per file:
//   {"file", "verified":bool, "status", "error", "expect", "ok"}
// status: "none" (no credentialStatus), "unset" (checked, no bit set), "set"
// (checked, a bit set -> verified false), "skipped" (--skip-status), null
// (not reached or status check failed). Then a summary line
// "verify-vc: N passed, M failed".
// Exit code 0 iff every file's result matches --expect (invalid = verified
// false or an exception), 1 otherwise, 2 on usage error.
import fs from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {createOfflineLoader} from './loader.mjs';
import {
  checkCredentialStatus, errorMessages, statusEntries
} from './bitstring-status.mjs';

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

const SET_BIT_MEANING = {revocation: 'revoked', suspension: 'suspended'};

// the `checkStatus` given to vc.verifyCredential (called only when the VC
// has credentialStatus and its proof verified): a set bit -> verified false
async function checkStatusStrict({credential}) {
  let entries;
  try {
    // entry types and list URLs first (as check-status.mjs), then purposes
    entries = statusEntries(credential);
  } catch(e) {
    return {verified: false, status: null,
      error: new Error(`credentialStatus not verified: ${e.message}`)};
  }
  for(const {statusPurpose: purpose} of entries) {
    if(!Object.hasOwn(SET_BIT_MEANING, purpose)) {
      return {verified: false, status: null, error: new Error(
        `credentialStatus statusPurpose ${JSON.stringify(purpose)} is not ` +
        'supported (only "revocation", "suspension")')};
    }
  }
  const r = await checkCredentialStatus(credential);
  if(!r.verified) {
    return {verified: false, status: null,
      error: new Error(`credentialStatus not verified: ${r.error}`)};
  }
  if(r.status) {
    const what = [...new Set(r.set.map(e => SET_BIT_MEANING[e.statusPurpose]))];
    return {verified: false, status: true, results: r.results,
      error: new Error(`${what.join(' and ')} (status list bit set)`)};
  }
  return {verified: true, status: false, results: r.results};
}

async function verifyFile(file, opts, documentLoader) {
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
  const hasStatus = credential.credentialStatus !== undefined &&
    credential.credentialStatus !== null;
  try {
    const suite = new DataIntegrityProof({cryptosuite});
    const args = {credential, suite, documentLoader};
    if(opts.now !== undefined) {
      args.now = opts.now;
    }
    // explicit skip: status is out of scope then; reported as "skipped"
    args.checkStatus = opts.skipStatus ?
      async () => ({verified: true, skipped: true}) : checkStatusStrict;
    const result = await vc.verifyCredential(args);
    const sr = result.statusResult;
    let status = null;
    if(!hasStatus) {
      status = 'none';
    } else if(sr && sr.skipped === true) {
      status = 'skipped';
    } else if(sr && sr.verified === true && sr.status === false) {
      status = 'unset';
    } else if(sr && sr.status === true) {
      status = 'set';
    }
    if(result.verified === true) {
      // belt and braces: every proof result must be verified too
      const proofResults = result.results || [];
      if(proofResults.length === 0 ||
        !proofResults.every(r => r.verified === true)) {
        return {verified: false, status, error: 'no verified proof result'};
      }
      // ... and a VC with credentialStatus needs a checked, unset status
      // (or an explicit skip)
      if(hasStatus && status !== 'unset' && status !== 'skipped') {
        return {verified: false, status,
          error: 'credentialStatus was not checked'};
      }
      return {verified: true, status, error: null};
    }
    const msgs = errorMessages(result);
    return {verified: false, status,
      error: msgs.join('; ') || 'verified: false'};
  } catch(e) {
    const msgs = errorMessages(e);
    return {verified: false, status: null,
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
      file, verified: r.verified, status: r.status, error: r.error,
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
