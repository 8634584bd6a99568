#!/usr/bin/env python3
"""Write tampered variants of one genuine VC, for negative verifier tests.

Usage:
  python3 tamper.py GENUINE.vc.json OUTDIR [--equivalent-dir DIR]

Every file written to OUTDIR is named NN-<what-changed>.vc.json and carries a
*semantic* change (a change of the signed RDF dataset or of the proof), so a
correct verifier MUST reject every one of them.  OUTDIR/manifest.json lists
them with a description.  Variants that do not apply to the input (e.g. no
digestMultibase) are skipped and reported on stderr.

With --equivalent-dir, also writes variants that are NOT semantic changes
(JSON key order, whitespace, order of `type` values, the OB 3.0
`AchievementCredential` alias of `OpenBadgeCredential`): a correct RDFC-1.0
verifier MUST still ACCEPT those.  This guards against a verifier that
compares bytes instead of canonical RDF.

Standard library only.
"""

import argparse
import copy
import json
import os
import sys

B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'


class Skip(Exception):
    pass


def _get(doc, *path):
    cur = doc
    for p in path:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and isinstance(p, int) and p < len(cur):
            cur = cur[p]
        else:
            raise Skip('no %s' % '.'.join(map(str, path)))
    return cur


def _set(doc, value, *path):
    parent = _get(doc, *path[:-1])
    if isinstance(parent, dict) and path[-1] not in parent:
        raise Skip('no %s' % '.'.join(map(str, path)))
    parent[path[-1]] = value


def _del(doc, *path):
    parent = _get(doc, *path[:-1])
    if path[-1] not in parent:
        raise Skip('no %s' % '.'.join(map(str, path)))
    del parent[path[-1]]


def _changed(old, suffix='-TAMPERED'):
    if not isinstance(old, str):
        raise Skip('not a string: %r' % (old,))
    return old + suffix


def _issuer_did(doc):
    iss = doc.get('issuer')
    return iss.get('id') if isinstance(iss, dict) else iss


def _flip_b58(s, idx):
    c = s[idx]
    repl = 'A' if c != 'A' else 'B'
    return s[:idx] + repl + s[idx + 1:]


def _first_identifier(doc):
    ids = _get(doc, 'credentialSubject', 'identifier')
    return (['credentialSubject', 'identifier', 0] if isinstance(ids, list)
            else ['credentialSubject', 'identifier'])


def _first_related(doc):
    rr = _get(doc, 'relatedResource')
    return ['relatedResource', 0] if isinstance(rr, list) else \
        ['relatedResource']


def _find_key(doc, key):
    """Path to the first occurrence of key anywhere outside the proof."""
    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == 'proof' and not path:
                    continue
                if k == key:
                    return path + [k]
                r = walk(v, path + [k])
                if r:
                    return r
        elif isinstance(node, list):
            for i, v in enumerate(node):
                r = walk(v, path + [i])
                if r:
                    return r
        return None
    p = walk(doc, [])
    if p is None:
        raise Skip('no %s' % key)
    return p


# Each: (name, description, function(doc) mutating doc in place)
def t_issuer_name(d):
    _set(d, _changed(_get(d, 'issuer', 'name')), 'issuer', 'name')


def t_issuer_id(d):
    did = _issuer_did(d)
    if not isinstance(did, str) or not did.startswith('did:'):
        raise Skip('issuer is not a DID')
    other = did.rsplit(':', 1)[0] + ':' + did.rsplit(':', 1)[1] + '-other'
    if isinstance(d['issuer'], dict):
        d['issuer']['id'] = other
    else:
        d['issuer'] = other


def t_valid_from(d):
    # an EARLIER date: only the signature can catch it (a future date would
    # also be rejected by the validity-period check, hiding a broken proof)
    old = _get(d, 'validFrom')
    new = '2020-01-01T00:00:00Z'
    if old == new:
        new = '2019-01-01T00:00:00Z'
    d['validFrom'] = new


def t_valid_until_added(d):
    if 'validUntil' in d:
        raise Skip('validUntil already present')
    d['validUntil'] = '2099-01-01T00:00:00Z'


def t_credential_name(d):
    _set(d, _changed(_get(d, 'name')), 'name')


def t_achievement_name(d):
    _set(d, _changed(_get(d, 'credentialSubject', 'achievement', 'name')),
         'credentialSubject', 'achievement', 'name')


def t_achievement_type(d):
    old = _get(d, 'credentialSubject', 'achievement', 'achievementType')
    _set(d, 'Certificate' if old != 'Certificate' else 'Diploma',
         'credentialSubject', 'achievement', 'achievementType')


def t_achievement_description(d):
    _set(d, _changed(_get(d, 'credentialSubject', 'achievement',
                          'description')),
         'credentialSubject', 'achievement', 'description')


def t_achievement_id(d):
    _set(d, _changed(_get(d, 'credentialSubject', 'achievement', 'id'), '-x'),
         'credentialSubject', 'achievement', 'id')


def t_criteria_narrative(d):
    _set(d, _changed(_get(d, 'credentialSubject', 'achievement', 'criteria',
                          'narrative')),
         'credentialSubject', 'achievement', 'criteria', 'narrative')


def t_identity_hash(d):
    p = _first_identifier(d) + ['identityHash']
    old = _get(d, *p)
    # change the last hex digit (stays a plausible hash)
    last = old[-1]
    _set(d, old[:-1] + ('0' if last != '0' else '1'), *p)


def t_identity_salt(d):
    p = _first_identifier(d) + ['salt']
    _set(d, _changed(_get(d, *p), '00'), *p)


def t_identity_type(d):
    p = _first_identifier(d) + ['identityType']
    old = _get(d, *p)
    _set(d, 'studentId' if old != 'studentId' else 'emailAddress', *p)


def t_identity_hashed(d):
    p = _first_identifier(d) + ['hashed']
    _set(d, not _get(d, *p), *p)


def t_digest_sri(d):
    p = _first_related(d) + ['digestSRI']
    old = _get(d, *p)
    # flip one base64 char of the digest
    i = len(old) // 2
    _set(d, old[:i] + ('A' if old[i] != 'A' else 'B') + old[i + 1:], *p)


def t_digest_multibase(d):
    p = _find_key(d, 'digestMultibase')
    old = _get(d, *p)
    _set(d, _flip_b58(old, len(old) // 2), *p)


def t_related_media_type(d):
    p = _first_related(d) + ['mediaType']
    _set(d, 'text/plain' if _get(d, *p) != 'text/plain' else 'image/png', *p)


def t_credential_id(d):
    old = _get(d, 'id')
    _set(d, 'urn:uuid:00000000-0000-4000-8000-000000000000'
         if old != 'urn:uuid:00000000-0000-4000-8000-000000000000'
         else 'urn:uuid:00000000-0000-4000-8000-000000000001', 'id')


def t_type_list(d):
    # NB: replacing OpenBadgeCredential by AchievementCredential is NOT a
    # change (the OB 3.0 context aliases them), so use another OB type
    types = list(_get(d, 'type'))
    if 'OpenBadgeCredential' not in types and \
            'AchievementCredential' not in types:
        raise Skip('no OpenBadgeCredential type')
    d['type'] = ['EndorsementCredential' if t in
                 ('OpenBadgeCredential', 'AchievementCredential') else t
                 for t in types]


def t_type_removed(d):
    types = [t for t in _get(d, 'type') if t == 'VerifiableCredential']
    if types == d['type']:
        raise Skip('only VerifiableCredential')
    d['type'] = types


def t_proof_value_flip(d):
    pv = _get(d, 'proof', 'proofValue')
    d['proof']['proofValue'] = _flip_b58(pv, len(pv) // 2)


def t_proof_value_flip_last(d):
    pv = _get(d, 'proof', 'proofValue')
    d['proof']['proofValue'] = _flip_b58(pv, len(pv) - 1)


def t_proof_value_truncated(d):
    pv = _get(d, 'proof', 'proofValue')
    d['proof']['proofValue'] = pv[:-4]


def t_proof_value_other_sig(d):
    # a syntactically valid 64-byte signature that is not the right one
    d['proof']['proofValue'] = 'z' + '2' * 88


def t_vm_other_key(d):
    vm = _get(d, 'proof', 'verificationMethod')
    did, frag = vm.split('#', 1)
    d['proof']['verificationMethod'] = did + '#' + (
        'key-2' if frag != 'key-2' else 'key-1')


def t_vm_unknown_fragment(d):
    vm = _get(d, 'proof', 'verificationMethod')
    d['proof']['verificationMethod'] = vm.split('#', 1)[0] + '#no-such-key'


def t_vm_other_did(d):
    vm = _get(d, 'proof', 'verificationMethod')
    did, frag = vm.split('#', 1)
    d['proof']['verificationMethod'] = did + '-other#' + frag


def t_proof_created(d):
    old = _get(d, 'proof', 'created')
    d['proof']['created'] = ('2021-01-01T00:00:00Z'
                             if old != '2021-01-01T00:00:00Z'
                             else '2022-01-01T00:00:00Z')


def t_proof_cryptosuite(d):
    _get(d, 'proof', 'cryptosuite')
    d['proof']['cryptosuite'] = 'eddsa-jcs-2022'


def t_proof_type(d):
    _get(d, 'proof', 'type')
    d['proof']['type'] = 'Ed25519Signature2020'


def t_proof_purpose(d):
    _get(d, 'proof', 'proofPurpose')
    d['proof']['proofPurpose'] = 'authentication'


def t_proof_removed(d):
    _del(d, 'proof')


def t_added_description(d):
    if 'description' in d:
        d['description'] = _changed(d['description'])
    else:
        d['description'] = 'An added claim that was never signed.'


def t_added_undefined_term(d):
    # not defined by any @context: JSON-LD expansion would silently DROP it;
    # a safe-mode canonicalizer must refuse rather than ignore it
    d['forgedUndefinedClaim'] = 'not in any context'


def t_removed_identifier(d):
    _del(d, 'credentialSubject', 'identifier')


def t_added_subject_id(d):
    if 'id' in _get(d, 'credentialSubject'):
        raise Skip('credentialSubject.id present')
    d['credentialSubject']['id'] = 'did:example:attacker'


def t_context_order(d):
    ctx = _get(d, '@context')
    if not isinstance(ctx, list) or len(ctx) < 2:
        raise Skip('fewer than 2 contexts')
    d['@context'] = ctx[1:] + ctx[:1]


def t_context_ob_version(d):
    ctx = _get(d, '@context')
    if not isinstance(ctx, list):
        raise Skip('single context')
    ob = 'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json'
    if ob not in ctx:
        raise Skip('no OB 3.0.3 context')
    d['@context'] = [('https://purl.imsglobal.org/spec/ob/v3p0/'
                      'context-3.0.2.json') if c == ob else c for c in ctx]


TAMPERS = [
    ('issuer-name', 'issuer.name changed', t_issuer_name),
    ('issuer-id-other-did', 'issuer.id replaced by another DID',
     t_issuer_id),
    ('validFrom', 'validFrom moved earlier', t_valid_from),
    ('validUntil-added', 'validUntil added', t_valid_until_added),
    ('credential-name', 'credential name changed', t_credential_name),
    ('achievement-name', 'achievement name changed', t_achievement_name),
    ('achievementType', 'achievementType changed', t_achievement_type),
    ('achievement-description', 'achievement description changed',
     t_achievement_description),
    ('achievement-id', 'achievement id changed', t_achievement_id),
    ('criteria-narrative', 'criteria.narrative changed',
     t_criteria_narrative),
    ('identityHash', 'recipient identityHash changed (last hex digit)',
     t_identity_hash),
    ('identity-salt', 'recipient identity salt changed', t_identity_salt),
    ('identityType', 'recipient identityType changed', t_identity_type),
    ('identity-hashed', 'recipient identity "hashed" flag flipped',
     t_identity_hashed),
    ('relatedResource-digestSRI', 'relatedResource digestSRI changed',
     t_digest_sri),
    ('digestMultibase', 'digestMultibase changed', t_digest_multibase),
    ('relatedResource-mediaType', 'relatedResource mediaType changed',
     t_related_media_type),
    ('credential-id', 'credential id changed', t_credential_id),
    ('type-list', 'OpenBadgeCredential replaced by EndorsementCredential',
     t_type_list),
    ('type-removed', 'all types but VerifiableCredential removed',
     t_type_removed),
    ('proofValue-flipped', 'proof.proofValue: one char flipped (middle)',
     t_proof_value_flip),
    ('proofValue-flipped-last', 'proof.proofValue: last char flipped',
     t_proof_value_flip_last),
    ('proofValue-truncated', 'proof.proofValue truncated by 4 chars',
     t_proof_value_truncated),
    ('proofValue-other-signature',
     'proof.proofValue replaced by another well-formed 64-byte value',
     t_proof_value_other_sig),
    ('proof-vm-other-key',
     'proof.verificationMethod points at another key fragment of the DID',
     t_vm_other_key),
    ('proof-vm-unknown-fragment',
     'proof.verificationMethod points at an unknown fragment',
     t_vm_unknown_fragment),
    ('proof-vm-other-did',
     'proof.verificationMethod points at the same fragment of another DID',
     t_vm_other_did),
    ('proof-created', 'proof.created changed', t_proof_created),
    ('proof-cryptosuite', 'proof.cryptosuite changed to eddsa-jcs-2022',
     t_proof_cryptosuite),
    ('proof-type', 'proof.type changed to Ed25519Signature2020',
     t_proof_type),
    ('proof-proofPurpose', 'proof.proofPurpose changed to authentication',
     t_proof_purpose),
    ('proof-removed', 'proof removed', t_proof_removed),
    ('added-description', 'top-level "description" claim added',
     t_added_description),
    ('added-undefined-term',
     'top-level claim with a term that no @context defines added',
     t_added_undefined_term),
    ('removed-identifier', 'credentialSubject.identifier removed',
     t_removed_identifier),
    ('added-subject-id', 'credentialSubject.id added', t_added_subject_id),
    ('context-order', '@context order changed (rotated)', t_context_order),
    ('context-ob-version', 'OB context 3.0.3 replaced by 3.0.2',
     t_context_ob_version),
]


# Non-semantic variants: same RDF dataset, same proof -> must still verify.
def e_key_order(d):
    def rev(node):
        if isinstance(node, dict):
            return {k: rev(node[k]) for k in reversed(list(node))}
        if isinstance(node, list):
            return [rev(v) for v in node]
        return node
    return rev(d)


def e_type_order(d):
    d = copy.deepcopy(d)
    if not isinstance(d.get('type'), list) or len(d['type']) < 2:
        raise Skip('type is not a list of >= 2')
    d['type'] = list(reversed(d['type']))
    return d


def e_achievement_credential_alias(d):
    d = copy.deepcopy(d)
    if 'OpenBadgeCredential' not in d.get('type', []):
        raise Skip('no OpenBadgeCredential type')
    d['type'] = ['AchievementCredential' if t == 'OpenBadgeCredential' else t
                 for t in d['type']]
    return d


EQUIVALENTS = [
    ('key-order-reversed', 'every JSON object key order reversed',
     e_key_order, 0),
    ('whitespace-compact', 'serialized without whitespace',
     lambda d: copy.deepcopy(d), None),
    ('type-order-reversed', 'order of the "type" values reversed',
     e_type_order, 2),
    ('type-AchievementCredential-alias',
     'OpenBadgeCredential written as its OB 3.0 alias AchievementCredential',
     e_achievement_credential_alias, 2),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('genuine')
    ap.add_argument('outdir')
    ap.add_argument('--equivalent-dir')
    args = ap.parse_args(argv)

    with open(args.genuine, encoding='utf-8') as f:
        genuine = json.load(f)
    if not isinstance(genuine, dict) or not isinstance(
            genuine.get('proof'), dict):
        ap.error('%s is not a VC with a single proof object' % args.genuine)

    os.makedirs(args.outdir, exist_ok=True)
    manifest = []
    canonical = json.dumps(genuine, sort_keys=True)
    n = 0
    for name, desc, fn in TAMPERS:
        doc = copy.deepcopy(genuine)
        try:
            fn(doc)
        except Skip as e:
            print('tamper: skipped %s (%s)' % (name, e), file=sys.stderr)
            continue
        if json.dumps(doc, sort_keys=True) == canonical:
            print('tamper: BUG: %s made no change' % name, file=sys.stderr)
            return 1
        n += 1
        fname = '%02d-%s.vc.json' % (n, name)
        with open(os.path.join(args.outdir, fname), 'w',
                  encoding='utf-8') as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
            f.write('\n')
        manifest.append({'file': fname, 'change': desc})
    with open(os.path.join(args.outdir, 'manifest.json'), 'w',
              encoding='utf-8') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    print('tamper: wrote %d tampered variants to %s' % (n, args.outdir),
          file=sys.stderr)

    if args.equivalent_dir:
        os.makedirs(args.equivalent_dir, exist_ok=True)
        m = 0
        for name, desc, fn, indent in EQUIVALENTS:
            try:
                doc = fn(genuine)
            except Skip as e:
                print('tamper: skipped equivalent %s (%s)' % (name, e),
                      file=sys.stderr)
                continue
            m += 1
            fname = '%02d-%s.vc.json' % (m, name)
            with open(os.path.join(args.equivalent_dir, fname), 'w',
                      encoding='utf-8') as f:
                if indent is None:
                    json.dump(doc, f, separators=(',', ':'),
                              ensure_ascii=False)
                else:
                    json.dump(doc, f, indent=indent, ensure_ascii=False)
        print('tamper: wrote %d equivalent (must-verify) variants to %s'
              % (m, args.equivalent_dir), file=sys.stderr)
    return 0 if n >= 20 else 1


if __name__ == '__main__':
    sys.exit(main())
