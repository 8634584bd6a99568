// Bitstring Status List check shared by check-status.mjs and verify-vc.mjs.
//
// checkCredentialStatus(credential, {apiBase}) calls `checkStatus` of
// @digitalbazaar/vc-bitstring-status-list with
// verifyBitstringStatusListCredential: true and verifyMatchingIssuers: true
// (the list credential's DataIntegrityProof eddsa-rdfc-2022 is verified with
// @digitalbazaar/vc against the issuer's did:web document, and its issuer
// compared with the VC's issuer), through the offline loader of loader.mjs
// with `httpUrls` admitting exactly the VC's `statusListCredential` URLs, and
// only when they are plain http on 127.0.0.1 / localhost / [::1] (and, with
// apiBase, under that base on a path boundary). The fetched list
// credential's `id` must equal the URL (loader.mjs).
//
// Stricter than the library: every `credentialStatus` entry must be an object
// of type BitstringStatusListEntry (the library silently ignores other
// entries of an array). It reports the bits; what a set bit means is up to
// the caller (check-status.mjs prints it, verify-vc.mjs fails on it).
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {createOfflineLoader, isLoopbackHttpUrl} from './loader.mjs';

// validates an --api-base URL; returns it with exactly one trailing '/'
// (prefix match on a path boundary: base "http://h:1/api" admits
// "http://h:1/api/..." but not "http://h:1/apix/...")
export function normalizeApiBase(apiBase) {
  if(!isLoopbackHttpUrl(apiBase)) {
    throw new Error('--api-base must be an http URL on 127.0.0.1, ' +
      `localhost or [::1]: ${apiBase}`);
  }
  return apiBase.replace(/\/+$/, '') + '/';
}

// collect human-readable messages from a result / error (incl. causes);
// the status library wraps errors as "...; reason: <cause message>", so a
// message already contained in one collected before is skipped
export function errorMessages(x, out = [], seen = new Set()) {
  if(x === null || x === undefined || typeof x !== 'object' || seen.has(x)) {
    return out;
  }
  seen.add(x);
  if(x instanceof Error || typeof x.message === 'string') {
    if(x.message && !out.some(m => m.includes(x.message))) {
      out.push(x.message);
    }
  }
  for(const key of ['errors', 'error', 'results', 'cause', 'statusResult']) {
    const v = x[key];
    if(Array.isArray(v)) {
      v.forEach(e => errorMessages(e, out, seen));
    } else if(v && typeof v === 'object') {
      errorMessages(v, out, seen);
    }
  }
  return out;
}

// the VC's credentialStatus entries; throws unless every one is an object of
// type BitstringStatusListEntry with a loopback http statusListCredential
// (under apiBase if given). [] when there is no credentialStatus.
export function statusEntries(credential, {apiBase = null} = {}) {
  const cs = credential.credentialStatus;
  if(cs === undefined || cs === null) {
    return [];
  }
  const entries = Array.isArray(cs) ? cs : [cs];
  for(const e of entries) {
    if(!e || typeof e !== 'object' || Array.isArray(e)) {
      throw new Error('credentialStatus entries must be objects');
    }
    if(e.type !== 'BitstringStatusListEntry') {
      throw new Error(`unsupported credentialStatus type ` +
        `${JSON.stringify(e.type)} (only BitstringStatusListEntry is ` +
        'checked)');
    }
    const url = e.statusListCredential;
    if(typeof url !== 'string' || !isLoopbackHttpUrl(url)) {
      throw new Error(`statusListCredential ${JSON.stringify(url)} is not ` +
        'an http URL on 127.0.0.1, localhost or [::1] (offline checker)');
    }
    if(apiBase !== null && !url.startsWith(apiBase)) {
      throw new Error(
        `statusListCredential ${url} is not under --api-base ${apiBase}`);
    }
  }
  return entries;
}

// -> {verified, status, set, results, error}
//   verified: every entry was checked (list fetched, proof + issuer OK)
//   status:   true if any entry's bit is set, false if none; null unless
//             verified
//   set:      the credentialStatus entries whose bit is set
//   results:  the library's per-entry results
//   error:    message string when not verified, else null
export async function checkCredentialStatus(credential, {apiBase = null} = {}) {
  const fail = error => ({verified: false, status: null, set: [],
    results: [], error});
  let entries;
  try {
    entries = statusEntries(credential, {apiBase});
  } catch(e) {
    return fail(e.message);
  }
  if(entries.length === 0) {
    return fail('no credentialStatus');
  }
  const urls = new Set(entries.map(e => e.statusListCredential));
  // a fresh loader per credential: only its list URLs may be fetched
  const {documentLoader} = createOfflineLoader({httpUrls: u => urls.has(u)});
  try {
    const result = await checkStatus({
      credential, documentLoader,
      suite: new DataIntegrityProof({cryptosuite}),
      verifyBitstringStatusListCredential: true,
      verifyMatchingIssuers: true
    });
    if(result.verified !== true) {
      return fail(errorMessages(result).join('; ') || 'verified: false');
    }
    const results = Array.isArray(result.results) ? result.results : [];
    if(results.length !== entries.length ||
      !results.every(r => r && r.verified === true &&
        typeof r.status === 'boolean')) {
      return fail('checkStatus returned no per-entry status');
    }
    const set = results.filter(r => r.status === true)
      .map(r => r.credentialStatus);
    return {verified: true, status: set.length > 0, set, results,
      error: null};
  } catch(e) {
    return fail(
      `exception: ${errorMessages(e).join('; ') || String(e)}`);
  }
}
