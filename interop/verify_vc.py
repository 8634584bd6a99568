#!/usr/bin/env python3
"""From-the-spec verifier for credential-anchor VCs (eddsa-rdfc-2022).

Independent of the Rust service AND of the digitalbazaar JS stack: it
implements the verification algorithm of W3C "Data Integrity EdDSA
Cryptosuites v1.0" (https://www.w3.org/TR/vc-di-eddsa/, section 3.2,
eddsa-rdfc-2022) with

  * pyld      - JSON-LD expansion + RDF Dataset Canonicalization (URDNA2015,
                i.e. RDFC-1.0; N-Quads literal escaping patched to the
                RDFC-1.0 canonical form, see _rdfc_escape)
  * pynacl    - Ed25519 signature verification (libsodium)
  * base58btc - decoded by hand below (multibase 'z')

Offline: JSON-LD contexts are read from a directory written by
export-contexts.mjs (the npm-published context packages; DIR/index.json maps
URL -> file) and never fetched; did:web DID documents are fetched over plain
http ONLY from 127.0.0.1 / localhost.

Status: NOT checked.  A credential with `credentialStatus` is refused
("status checking is not implemented") unless --skip-status is given; then
`credentialStatus` is accepted and ignored (it is still covered by the
signature like any other property).  Status (Bitstring Status List) is out of
scope of this from-the-spec proof check; verify-vc.mjs / check-status.mjs
check it.

Usage:
  python3 verify_vc.py --contexts DIR --expect valid|invalid [--now ISO]
                       [--skip-status] FILE...

One JSON line per file {"file", "verified":bool, "status", "error", "expect",
"ok"} (status: "none" = no credentialStatus, "skipped" = present and ignored
with --skip-status, null = refused or not reached), then a
summary line "verify_vc: N passed, M failed".  Exit code 0 iff every file's
result matches --expect (invalid = verified false or an exception), 1
otherwise, 2 on usage errors.
"""

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import nacl.exceptions
import nacl.signing
import pyld.nquads
from pyld import jsonld

CRED_V2 = 'https://www.w3.org/ns/credentials/v2'
LOOPBACK_HOSTS = {'127.0.0.1', 'localhost'}
CRYPTOSUITE = 'eddsa-rdfc-2022'
PROOF_TYPE = 'DataIntegrityProof'
ED25519_PUB_MULTICODEC = b'\xed\x01'
B58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
# XML Schema dateTimeStamp-ish (what the VC / DI specs require)
DATETIME_RE = re.compile(
    r'^-?[0-9]{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])'
    r'T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?'
    r'(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$')


class VerifyError(Exception):
    pass


# --------------------------------------------------------------------------
# RDFC-1.0 canonical N-Quads literal escaping.  pyld 3.3.0 escapes only
# \\ \t \n \r " ; RDFC-1.0 (canonical N-Quads) additionally requires \b, \f
# as ECHAR and every other U+0000..U+001F and U+007F as \\uXXXX (UCHAR).
# Identical output for strings without control characters.
_RDFC_ESCAPES = {0x08: '\\b', 0x09: '\\t', 0x0A: '\\n', 0x0C: '\\f',
                 0x0D: '\\r', 0x22: '\\"', 0x5C: '\\\\'}
_RDFC_ESCAPE_RE = re.compile('[\u0000-\u001f\u007f"\\\\]')


def _rdfc_escape(value):
    return _RDFC_ESCAPE_RE.sub(
        lambda m: _RDFC_ESCAPES.get(ord(m.group(0)),
                                    '\\u%04X' % ord(m.group(0))), value)


pyld.nquads.escape = _rdfc_escape


# --------------------------------------------------------------------------
def b58decode(s):
    if not s or any(c not in B58_ALPHABET for c in s):
        raise VerifyError('invalid base58btc string')
    n = 0
    for c in s:
        n = n * 58 + B58_ALPHABET.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, 'big') if n else b''
    pad = len(s) - len(s.lstrip('1'))
    return b'\x00' * pad + raw


def multibase_b58_decode(value, what):
    if not isinstance(value, str) or not value.startswith('z'):
        raise VerifyError('%s must be a multibase base58btc ("z...") string'
                          % what)
    return b58decode(value[1:])


def parse_datetime(value, what):
    if not isinstance(value, str) or not DATETIME_RE.match(value):
        raise VerifyError('%s (%r) is not an XML Schema dateTimeStamp'
                          % (what, value))
    v = value.replace('Z', '+00:00')
    # python < 3.11 cannot parse arbitrary fractional digits; trim to micros
    v = re.sub(r'(\.\d{6})\d+', r'\1', v)
    return dt.datetime.fromisoformat(v)


# --------------------------------------------------------------------------
def did_web_to_url(did):
    if not isinstance(did, str) or not did.startswith('did:web:'):
        raise VerifyError('not a did:web DID: %r' % (did,))
    msi = did[len('did:web:'):]
    if not msi or re.search(r'[?#/]', msi):
        raise VerifyError('malformed did:web DID: %s' % did)
    parts = msi.split(':')
    if any(p == '' for p in parts):
        raise VerifyError('malformed did:web DID (empty segment): %s' % did)
    host_port = urllib.parse.unquote(parts[0])
    m = re.match(r'^([A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?$', host_port)
    if not m:
        raise VerifyError('malformed did:web host %r in %s' % (host_port, did))
    host, port = m.group(1), m.group(2)
    if host.lower() not in LOOPBACK_HOSTS:
        raise VerifyError('refusing to resolve %s: offline verifier only '
                          'resolves did:web on 127.0.0.1 or localhost' % did)
    segs = []
    for p in parts[1:]:
        seg = urllib.parse.unquote(p)
        if seg in ('.', '..') or '/' in seg:
            raise VerifyError('malformed did:web path segment %r' % seg)
        segs.append(urllib.parse.quote(seg, safe=''))
    base = 'http://%s%s' % (host, ':' + port if port else '')
    if not segs:
        return base + '/.well-known/did.json'
    return base + '/' + '/'.join(segs) + '/did.json'


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        raise VerifyError('DID document fetch was redirected; refused')


_OPENER = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _NoRedirect())


class Resolver:
    def __init__(self, contexts_dir, timeout=10.0):
        index_path = os.path.join(contexts_dir, 'index.json')
        with open(index_path, encoding='utf-8') as f:
            index = json.load(f)
        self.contexts = {}
        for url, name in index.items():
            with open(os.path.join(contexts_dir, name), encoding='utf-8') as f:
                self.contexts[url] = json.load(f)
        self.timeout = timeout
        self.did_cache = {}

    def resolve_did(self, did):
        if did in self.did_cache:
            return self.did_cache[did]
        url = did_web_to_url(did)
        req = urllib.request.Request(
            url, headers={'Accept': 'application/did+json, application/json'})
        try:
            with _OPENER.open(req, timeout=self.timeout) as res:
                body = res.read()
        except urllib.error.HTTPError as e:
            raise VerifyError('GET %s -> HTTP %s' % (url, e.code))
        except (urllib.error.URLError, OSError) as e:
            raise VerifyError('GET %s failed: %s' % (url, e))
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise VerifyError('DID document at %s is not a JSON object' % url)
        if doc.get('id') != did:
            raise VerifyError('DID document at %s has id %r, expected %r'
                              % (url, doc.get('id'), did))
        self.did_cache[did] = doc
        return doc

    def document_loader(self, url, options=None):
        if url in self.contexts:
            return {'contentType': 'application/ld+json', 'contextUrl': None,
                    'documentUrl': url,
                    'document': copy.deepcopy(self.contexts[url])}
        # a VC must never make the canonicalizer fetch anything else
        raise jsonld.JsonLdError(
            'offline document loader refused to load %r' % url,
            'jsonld.LoadDocumentError', {'url': url},
            code='loading document failed')


# --------------------------------------------------------------------------
# "safe mode": jsonld.js canonizes with {safe: true}, which throws when
# expansion would silently drop data.  pyld has no such flag, so: raise on
# every dropped property (pyld's on_property_dropped hook) and reject
# relative / non-absolute IRIs that toRdf would silently drop.
_ABS_IRI_RE = re.compile(r'^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$')


def _check_expanded(node, path='$'):
    if isinstance(node, list):
        for i, v in enumerate(node):
            _check_expanded(v, '%s[%d]' % (path, i))
        return
    if not isinstance(node, dict):
        return
    if '@value' in node:
        return
    for key, value in node.items():
        if key.startswith('@'):
            if key == '@id':
                if not isinstance(value, str) or not (
                        value.startswith('_:') or _ABS_IRI_RE.match(value)):
                    raise VerifyError('unsafe JSON-LD: relative @id %r at %s'
                                      % (value, path))
            elif key == '@type':
                for t in value if isinstance(value, list) else [value]:
                    if not isinstance(t, str) or not (
                            t.startswith('_:') or _ABS_IRI_RE.match(t)):
                        raise VerifyError(
                            'unsafe JSON-LD: relative @type %r at %s'
                            % (t, path))
            elif key in ('@graph', '@list', '@set', '@included', '@reverse'):
                _check_expanded(value, '%s.%s' % (path, key))
            continue
        if not (key.startswith('_:') or _ABS_IRI_RE.match(key)):
            raise VerifyError('unsafe JSON-LD: property %r at %s does not '
                              'expand to an absolute IRI' % (key, path))
        _check_expanded(value, '%s.<%s>' % (path, key))


def canonize(doc, resolver, what):
    dropped = []

    def on_dropped(prop):
        dropped.append(prop)

    proc = jsonld.JsonLdProcessor(on_property_dropped=on_dropped)
    opts = {'documentLoader': resolver.document_loader, 'base': None}
    try:
        expanded = proc.expand(copy.deepcopy(doc), dict(opts))
        if dropped:
            raise VerifyError(
                'unsafe JSON-LD in %s: expansion dropped term(s) %s (not '
                'defined by the @context)' % (what, dropped))
        _check_expanded(expanded)
        nq = proc.normalize(copy.deepcopy(doc), dict(
            opts, algorithm='URDNA2015', format='application/n-quads'))
    except jsonld.JsonLdError as e:
        raise VerifyError('JSON-LD error in %s: %s' % (what, _jsonld_msg(e)))
    if dropped:
        raise VerifyError('unsafe JSON-LD in %s: dropped term(s) %s'
                          % (what, dropped))
    if not nq:
        raise VerifyError('%s canonicalizes to an empty dataset' % what)
    return nq


def _jsonld_msg(e):
    msgs = []
    while e is not None and len(msgs) < 6:
        text = e.args[0] if getattr(e, 'args', None) else e
        msgs.append(str(text).splitlines()[0] if str(text) else type(e).__name__)
        e = e.__cause__ or getattr(e, 'cause', None)
    return ' <- '.join(msgs)


# --------------------------------------------------------------------------
def _values(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def check_credential_shape(vc, now, skip_status=False):
    """The basic VCDM 2.0 checks @digitalbazaar/vc also makes."""
    ctx = _values(vc.get('@context'))
    if not ctx or ctx[0] != CRED_V2:
        raise VerifyError('"@context" must start with %s' % CRED_V2)
    if 'VerifiableCredential' not in _values(vc.get('type')):
        raise VerifyError('"type" must include "VerifiableCredential"')
    if not vc.get('credentialSubject'):
        raise VerifyError('"credentialSubject" is required')
    issuer = vc.get('issuer')
    issuer_id = issuer.get('id') if isinstance(issuer, dict) else issuer
    if not isinstance(issuer_id, str) or not _ABS_IRI_RE.match(issuer_id):
        raise VerifyError('"issuer" must be a URL or an object with a URL id')
    if 'validFrom' in vc:
        if parse_datetime(vc['validFrom'], 'validFrom') > now:
            raise VerifyError('credential is not yet valid (validFrom %s)'
                              % vc['validFrom'])
    if 'validUntil' in vc:
        if parse_datetime(vc['validUntil'], 'validUntil') < now:
            raise VerifyError('credential has expired (validUntil %s)'
                              % vc['validUntil'])
    if 'credentialStatus' in vc and not skip_status:
        raise VerifyError('credentialStatus present: status checking is not '
                          'implemented by this verifier (use --skip-status '
                          'to verify the proof only)')
    return issuer_id


def verify_credential(vc, resolver, now, skip_status=False):
    if not isinstance(vc, dict):
        raise VerifyError('not a JSON object')
    issuer_id = check_credential_shape(vc, now, skip_status)

    proofs = _values(vc.get('proof'))
    if len(proofs) != 1 or not isinstance(proofs[0], dict):
        raise VerifyError('expected exactly one proof object, got %d'
                          % len(proofs))
    proof = proofs[0]

    # vc-di-eddsa 3.2.2 Verify Proof (eddsa-rdfc-2022)
    # 1. unsecuredDocument = securedDocument without proof
    unsecured = {k: v for k, v in vc.items() if k != 'proof'}
    # 2. proofOptions = proof without proofValue
    options = {k: v for k, v in proof.items() if k != 'proofValue'}
    # 3. proofBytes = multibase-decode(proofValue)
    proof_bytes = multibase_b58_decode(proof.get('proofValue'),
                                       'proof.proofValue')
    if len(proof_bytes) != 64:
        raise VerifyError('proofValue decodes to %d bytes, expected 64'
                          % len(proof_bytes))
    # 4. proof @context handling
    if '@context' in options:
        pctx = _values(options['@context'])
        dctx = _values(vc.get('@context'))
        if dctx[:len(pctx)] != pctx:
            raise VerifyError('proof @context is not a prefix of the '
                              'document @context')
        unsecured['@context'] = options['@context']
    # 3.2.4 Transformation / 3.2.6 Proof Configuration checks
    if options.get('type') != PROOF_TYPE:
        raise VerifyError('proof.type must be %s, got %r'
                          % (PROOF_TYPE, options.get('type')))
    if options.get('cryptosuite') != CRYPTOSUITE:
        raise VerifyError('proof.cryptosuite must be %s, got %r'
                          % (CRYPTOSUITE, options.get('cryptosuite')))
    if 'created' in options:
        parse_datetime(options['created'], 'proof.created')
    if 'expires' in options:
        if parse_datetime(options['expires'], 'proof.expires') < now:
            raise VerifyError('proof has expired')
    if options.get('proofPurpose') != 'assertionMethod':
        raise VerifyError('proof.proofPurpose must be assertionMethod, got %r'
                          % options.get('proofPurpose'))

    # key material: DID document -> verificationMethod -> publicKeyMultibase
    vm_id = options.get('verificationMethod')
    if isinstance(vm_id, dict):
        vm_id = vm_id.get('id')
    if not isinstance(vm_id, str) or '#' not in vm_id:
        raise VerifyError('proof.verificationMethod must be a DID URL with a '
                          'fragment')
    did, frag = vm_id.split('#', 1)
    did_doc = resolver.resolve_did(did)
    vm = None
    for entry in _values(did_doc.get('verificationMethod')):
        if isinstance(entry, dict) and entry.get('id') in (vm_id, '#' + frag):
            vm = entry
            break
    if vm is None:
        raise VerifyError('verification method %s not found in DID document'
                          % vm_id)
    if vm.get('type') != 'Multikey':
        raise VerifyError('verification method type must be Multikey, got %r'
                          % vm.get('type'))
    if vm.get('controller') != did:
        raise VerifyError('verification method controller %r is not %s'
                          % (vm.get('controller'), did))
    authorized = any(
        (a if isinstance(a, str) else (a or {}).get('id')) in
        (vm_id, '#' + frag)
        for a in _values(did_doc.get('assertionMethod')))
    if not authorized:
        raise VerifyError('verification method %s is not authorized for '
                          'assertionMethod by %s' % (vm_id, did))
    if issuer_id != did:
        raise VerifyError('issuer %s does not match the controller %s of the '
                          'verification method' % (issuer_id, did))
    pub = multibase_b58_decode(vm.get('publicKeyMultibase'),
                               'publicKeyMultibase')
    if len(pub) != 34 or pub[:2] != ED25519_PUB_MULTICODEC:
        raise VerifyError('publicKeyMultibase is not an Ed25519 public key '
                          '(multicodec 0xed01 + 32 bytes)')

    # 3.2.4 transformation: canonicalize the unsecured document (RDFC-1.0)
    canon_doc = canonize(unsecured, resolver, 'document')
    # 3.2.6 proof configuration: @context = document @context
    proof_config = dict(options)
    proof_config['@context'] = unsecured['@context']
    canon_proof = canonize(proof_config, resolver, 'proof configuration')
    # 3.2.5 hashing
    hash_data = (hashlib.sha256(canon_proof.encode('utf-8')).digest() +
                 hashlib.sha256(canon_doc.encode('utf-8')).digest())
    # 3.2.7 proof verification
    try:
        nacl.signing.VerifyKey(pub[2:]).verify(hash_data, proof_bytes)
    except nacl.exceptions.BadSignatureError:
        raise VerifyError('Ed25519 signature verification failed')
    return True


# --------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(
        description='Offline eddsa-rdfc-2022 VC verifier (from the spec).')
    ap.add_argument('--contexts', required=True,
                    help='directory written by export-contexts.mjs')
    ap.add_argument('--expect', required=True, choices=['valid', 'invalid'])
    ap.add_argument('--now', help='ISO date-time to use as "now"')
    ap.add_argument('--skip-status', action='store_true',
                    help='accept and ignore credentialStatus (status is out '
                    'of scope of this proof check; default: refuse a VC '
                    'that has one)')
    ap.add_argument('files', nargs='+', metavar='FILE')
    args = ap.parse_args(argv)

    if args.now:
        try:
            now = parse_datetime(args.now, '--now')
        except VerifyError as e:
            ap.error(str(e))
    else:
        now = dt.datetime.now(dt.timezone.utc)
    try:
        resolver = Resolver(args.contexts)
    except (OSError, ValueError) as e:
        ap.error('cannot load contexts from %s: %s' % (args.contexts, e))

    passed = failed = 0
    for path in args.files:
        verified, error, status = False, None, None
        try:
            with open(path, encoding='utf-8') as f:
                vc = json.load(f)
            verified = verify_credential(vc, resolver, now,
                                         args.skip_status) is True
            status = 'skipped' if 'credentialStatus' in vc else 'none'
        except VerifyError as e:
            error = str(e)
        except (OSError, ValueError) as e:
            error = 'cannot read/parse: %s' % e
        except Exception as e:  # any exception = not verified
            error = 'exception: %s: %s' % (type(e).__name__, e)
        ok = verified if args.expect == 'valid' else not verified
        passed += ok
        failed += not ok
        print(json.dumps({'file': path, 'verified': verified,
                          'status': status, 'error': error,
                          'expect': args.expect, 'ok': ok}), flush=True)
    print('verify_vc: %d passed, %d failed' % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
