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
// that base). The fetched list credential's `id` must equal the URL. Every
// credentialStatus entry must be a BitstringStatusListEntry. The check itself
// is bitstring-status.mjs, shared with verify-vc.mjs.
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
import {checkCredentialStatus, normalizeApiBase} from './bitstring-status.mjs';

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
    try {
      opts.apiBase = normalizeApiBase(opts.apiBase);
    } catch(e) {
      usage(e.message);
    }
  }
  return opts;
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
  // shared with verify-vc.mjs (bitstring-status.mjs); several entries
  // (e.g. revocation + suspension): status true if any bit is set
  const {verified, status, error} = await checkCredentialStatus(credential,
    {apiBase: opts.apiBase});
  return {verified, status, error};
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
