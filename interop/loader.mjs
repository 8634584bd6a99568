// Offline JSON-LD document loader for the interop verifiers.
//
// * JSON-LD contexts: served only from the pinned npm context packages
//   (contexts.mjs); any other context URL is refused, never fetched.
// * did:web DIDs: resolved over plain http, and ONLY when the host is
//   127.0.0.1 or localhost (the tests serve DID documents on loopback).
//   did:web:<host>%3A<port>:<seg1>:<seg2> -> http://<host>:<port>/seg1/seg2/did.json
//   did:web:<host>%3A<port>              -> http://<host>:<port>/.well-known/did.json
// * A verification-method URL (DID + '#fragment') is resolved by fetching the
//   DID document and returning the matching `verificationMethod` entry with
//   the multikey `@context` added (what the digitalbazaar loaders do).
// * Other documents (Bitstring Status List credentials): NOT loaded by
//   default. Only with `createOfflineLoader({httpUrls})`, and then only a URL
//   for which `httpUrls(url)` returns true AND that is plain http on a
//   loopback host (127.0.0.1, localhost, [::1]) is fetched (GET, JSON, no
//   redirects); the fetched JSON object's `id` must equal the URL.
//   check-status.mjs passes the `statusListCredential` URLs of its input VCs.
import {knownContexts, MULTIKEY_CONTEXT_URL} from './contexts.mjs';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost']);
// as URL#hostname spells them (IPv6 literals keep their brackets)
const LOOPBACK_HTTP_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

// true iff `url` is an absolute http: URL on a loopback host, without
// userinfo (the only kind of non-DID, non-context URL the loader may fetch)
export function isLoopbackHttpUrl(url) {
  if(typeof url !== 'string') {
    return false;
  }
  let u;
  try {
    u = new URL(url);
  } catch{
    return false;
  }
  return u.protocol === 'http:' && u.username === '' && u.password === '' &&
    LOOPBACK_HTTP_HOSTS.has(u.hostname.toLowerCase());
}

export function didWebToUrl(did) {
  if(typeof did !== 'string' || !did.startsWith('did:web:')) {
    throw new Error(`not a did:web DID: ${did}`);
  }
  const msi = did.slice('did:web:'.length);
  if(msi.length === 0 || /[?#/]/.test(msi)) {
    throw new Error(`malformed did:web DID: ${did}`);
  }
  const parts = msi.split(':');
  if(parts.some(p => p.length === 0)) {
    throw new Error(`malformed did:web DID (empty segment): ${did}`);
  }
  const hostPort = decodeURIComponent(parts[0]);
  const m = /^([A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?$/.exec(hostPort);
  if(!m) {
    throw new Error(`malformed did:web host "${hostPort}" in ${did}`);
  }
  const [, host, port] = m;
  if(!LOOPBACK_HOSTS.has(host.toLowerCase())) {
    throw new Error(
      `refusing to resolve ${did}: offline verifier only resolves did:web ` +
      'on 127.0.0.1 or localhost');
  }
  const path = parts.slice(1).map(p => {
    const seg = decodeURIComponent(p);
    if(seg === '.' || seg === '..' || seg.includes('/')) {
      throw new Error(`malformed did:web path segment "${seg}" in ${did}`);
    }
    return encodeURIComponent(seg);
  });
  const base = `http://${host}${port ? ':' + port : ''}`;
  return path.length === 0 ?
    `${base}/.well-known/did.json` : `${base}/${path.join('/')}/did.json`;
}

// `httpUrls`: optional predicate url => bool selecting the loopback http
// URLs (other than DIDs and contexts) that may be fetched; default: none.
export function createOfflineLoader({fetchTimeoutMs = 10000, httpUrls} = {}) {
  if(httpUrls !== undefined && typeof httpUrls !== 'function') {
    throw new TypeError('"httpUrls" must be a function');
  }
  const contexts = knownContexts();
  const didCache = new Map();
  const log = [];

  async function resolveDidWeb(did) {
    if(didCache.has(did)) {
      return didCache.get(did);
    }
    const promise = (async () => {
      const url = didWebToUrl(did);
      log.push(url);
      const res = await fetch(url, {
        redirect: 'error',
        headers: {accept: 'application/did+json, application/json'},
        signal: AbortSignal.timeout(fetchTimeoutMs)
      });
      if(!res.ok) {
        throw new Error(`GET ${url} -> HTTP ${res.status}`);
      }
      const doc = JSON.parse(await res.text());
      if(!doc || typeof doc !== 'object' || Array.isArray(doc)) {
        throw new Error(`DID document at ${url} is not a JSON object`);
      }
      if(doc.id !== did) {
        throw new Error(
          `DID document at ${url} has id "${doc.id}", expected "${did}"`);
      }
      return doc;
    })();
    didCache.set(did, promise);
    return promise;
  }

  // not cached: a status list changes when a credential is revoked
  async function fetchLoopbackJson(url) {
    log.push(url);
    const res = await fetch(url, {
      redirect: 'error',
      headers: {
        accept: 'application/vc+ld+json, application/ld+json, ' +
          'application/json'
      },
      signal: AbortSignal.timeout(fetchTimeoutMs)
    });
    if(!res.ok) {
      throw new Error(`GET ${url} -> HTTP ${res.status}`);
    }
    const doc = JSON.parse(await res.text());
    if(!doc || typeof doc !== 'object' || Array.isArray(doc)) {
      throw new Error(`document at ${url} is not a JSON object`);
    }
    if(doc.id !== url) {
      throw new Error(
        `document at ${url} has id "${doc.id}", expected "${url}"`);
    }
    return doc;
  }

  async function documentLoader(url) {
    if(contexts.has(url)) {
      return {contextUrl: null, documentUrl: url,
        document: contexts.get(url).document};
    }
    if(typeof url === 'string' && url.startsWith('did:web:')) {
      const hash = url.indexOf('#');
      const did = hash === -1 ? url : url.slice(0, hash);
      const didDoc = await resolveDidWeb(did);
      if(hash === -1) {
        return {contextUrl: null, documentUrl: url, document: didDoc};
      }
      const frag = url.slice(hash);
      const vms = Array.isArray(didDoc.verificationMethod) ?
        didDoc.verificationMethod : [];
      const vm = vms.find(v => v && typeof v === 'object' &&
        (v.id === url || v.id === frag));
      if(!vm) {
        throw new Error(
          `verification method ${url} not found in DID document ${did}`);
      }
      const document = {
        '@context': MULTIKEY_CONTEXT_URL,
        ...vm,
        id: url
      };
      return {contextUrl: null, documentUrl: url, document};
    }
    if(httpUrls && isLoopbackHttpUrl(url) && httpUrls(url) === true) {
      const document = await fetchLoopbackJson(url);
      return {contextUrl: null, documentUrl: url, document};
    }
    throw new Error(`offline document loader refused to load "${url}"`);
  }

  return {documentLoader, contexts, fetched: log};
}
