#!/usr/bin/env node
// Self-test of check-status.mjs, of the status handling of verify-vc.mjs and
// verify_vc.py, and of the Bitstring Status List format as
// @digitalbazaar/vc-bitstring-status-list reads it, offline, on loopback only.
//
// Usage: node status-selftest.mjs [--keep DIR] [--python PY] [--contexts DIR]
//   (run from a directory with the pinned node_modules, e.g. the one printed
//   by scripts/install-interop.sh; selftest.sh runs it. --python / --contexts
//   default to venv/bin/python and contexts/ next to this script.)
//
// Serves, from an in-process http server on 127.0.0.1:<random port>:
//   /issuers/demo/did.json, /issuers/other/did.json   (Ed25519 Multikey)
//   /issuers/demo/status-lists/<name>                  (status list VCs)
// with did:web:127.0.0.1%3A<port>:issuers:demo as issuer. The main list is
// built BY HAND exactly as the Rust issuer builds it (131072 bits, index 0 =
// most significant bit of byte 0, GZIP, base64url without padding, "u"
// prefix), bits 3 and 9 set, signed DataIntegrityProof eddsa-rdfc-2022. VCs
// (minimal VCDM 2.0 and the OB 3.0 sample) point at index 3 (set) and 4
// (unset); then check-status.mjs is run as a child process and its JSON
// lines / exit codes are asserted, along with negative cases (bad proof,
// missing "u", issuer mismatch, purpose mismatch, validFrom in the future,
// validUntil past, wrong list id, non-loopback URL, index out of range, ...).
// Then verify-vc.mjs (default = status checked): bit unset -> valid, bit set
// -> invalid ("revoked (status list bit set)" / "suspended ..."), the same VC
// before and after its bit is set on a served list, every check-status
// negative -> invalid; verify-vc.mjs --skip-status -> valid whatever the bit;
// verify_vc.py --skip-status -> VCs with credentialStatus valid, without the
// flag -> refused; a VC whose statusListIndex was changed after signing ->
// invalid in all modes.
//
// One JSON line per case {"case", "ok", "detail"}; last line
// "status-selftest: N passed, M failed"; exit 0 iff M == 0.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import {execFile} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {
  createList, createCredential, decodeList
} from '@digitalbazaar/vc-bitstring-status-list';
import {knownContexts} from './contexts.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const LIST_BITS = 131072;
const VC2 = 'https://www.w3.org/ns/credentials/v2';

const argv = process.argv.slice(2);
let keepDir = null;
let python = path.join(here, 'venv', 'bin', 'python');
let contextsDir = path.join(here, 'contexts');
for(let i = 0; i < argv.length; i++) {
  const [a, v] = [argv[i], argv[i + 1]];
  if(v === undefined || !['--keep', '--python', '--contexts'].includes(a)) {
    console.error('usage: node status-selftest.mjs [--keep DIR] ' +
      '[--python PY] [--contexts DIR]');
    process.exit(2);
  }
  i++;
  if(a === '--keep') {
    keepDir = v;
  } else if(a === '--python') {
    python = v;
  } else {
    contextsDir = v;
  }
}

let passed = 0;
let failed = 0;
function report(name, ok, detail = null) {
  if(ok) {
    passed++;
  } else {
    failed++;
  }
  process.stdout.write(JSON.stringify({case: name, ok, detail}) + '\n');
}

// ---- the list encoding, written from the spec (as the Rust side does) ----
function handEncode(setIndices, bits = LIST_BITS) {
  const bytes = new Uint8Array(bits / 8);
  for(const i of setIndices) {
    bytes[i >> 3] |= 0x80 >> (i & 7);
  }
  // Node's base64url has no '=' padding
  return 'u' + zlib.gzipSync(bytes).toString('base64url');
}
function rawBits(encodedList) {
  return zlib.gunzipSync(Buffer.from(encodedList.slice(1), 'base64url'));
}

// ---- http server (DID documents + status lists) ----
const routes = new Map();
const server = http.createServer((req, res) => {
  const doc = req.method === 'GET' ? routes.get(req.url) : undefined;
  if(doc === undefined) {
    res.writeHead(404, {'content-type': 'text/plain'});
    res.end('not found');
    return;
  }
  res.writeHead(200, {'content-type': 'application/json'});
  res.end(JSON.stringify(doc));
});
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const port = server.address().port;
const origin = `http://127.0.0.1:${port}`;
const didOf = name => `did:web:127.0.0.1%3A${port}:issuers:${name}`;

const contexts = knownContexts();
const signLoader = async url => {
  if(contexts.has(url)) {
    return {contextUrl: null, documentUrl: url,
      document: contexts.get(url).document};
  }
  throw new Error(`offline loader refused ${url}`);
};

async function makeIssuer(name, seedByte) {
  const did = didOf(name);
  const vmId = `${did}#key-1`;
  const seed = new Uint8Array(32).fill(seedByte);
  const key = await Ed25519Multikey.generate({seed, id: vmId, controller: did});
  routes.set(`/issuers/${name}/did.json`, {
    '@context': ['https://www.w3.org/ns/did/v1',
      'https://w3id.org/security/multikey/v1'],
    id: did,
    verificationMethod: [{id: vmId, type: 'Multikey', controller: did,
      publicKeyMultibase: key.publicKeyMultibase}],
    assertionMethod: [vmId]
  });
  return {did, key};
}

async function sign(doc, issuer) {
  const suite = new DataIntegrityProof({signer: issuer.key.signer(),
    cryptosuite});
  return vc.issue({credential: structuredClone(doc), suite,
    documentLoader: signLoader});
}

const work = keepDir ?? fs.mkdtempSync(path.join(os.tmpdir(),
  'status-selftest.'));
fs.mkdirSync(work, {recursive: true});

try {
  const demo = await makeIssuer('demo', 0x07);
  const other = await makeIssuer('other', 0x08);
  const listUrl = n => `${origin}/issuers/demo/status-lists/${n}`;
  const past = '2026-01-01T00:00:00Z';
  const dayMs = 24 * 3600 * 1000;
  const iso = ms => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

  // ---- 1. format facts, without the network ----
  const hand = handEncode([3, 9]);
  {
    const list = await createList({length: LIST_BITS});
    list.setStatus(3, true);
    list.setStatus(9, true);
    const lib = await list.encode();
    const a = rawBits(hand);
    const b = rawBits(lib);
    report('format: library encode() starts with "u"', lib[0] === 'u', lib.slice(0, 12));
    report('format: library bits == hand-made bits (MSB-first, 16384 bytes)',
      Buffer.compare(a, b) === 0 && a.length === LIST_BITS / 8 &&
      a[0] === 0x10 && a[1] === 0x40,
      `byte0=0x${b[0].toString(16)} byte1=0x${b[1].toString(16)} len=${b.length}`);
    report('format: library encodedList has no "=" padding',
      !lib.includes('=') && /^u[A-Za-z0-9_-]+$/.test(lib));
    const dec = await decodeList({encodedList: hand});
    report('format: decodeList(hand-made) reads bits 3,9 set; 4,0,131071 unset; length 131072',
      dec.getStatus(3) === true && dec.getStatus(9) === true &&
      dec.getStatus(4) === false && dec.getStatus(0) === false &&
      dec.getStatus(LIST_BITS - 1) === false && dec.length === LIST_BITS,
      `length=${dec.length}`);
    let err = null;
    try {
      await decodeList({encodedList: hand.slice(1)});
    } catch(e) {
      err = e.message;
    }
    report('format: decodeList rejects encodedList without "u" prefix',
      err !== null && /must start with the character "u"/.test(err), err);
  }

  // ---- 2. status list credentials ----
  const listBody = (n, encodedList, extra = {}) => ({
    '@context': [VC2],
    id: listUrl(n),
    type: ['VerifiableCredential', 'BitstringStatusListCredential'],
    issuer: demo.did,
    validFrom: past,
    credentialSubject: {
      id: `${listUrl(n)}#list`,
      type: 'BitstringStatusList',
      statusPurpose: 'revocation',
      encodedList
    },
    ...extra
  });
  const serveList = (n, doc) => routes.set(
    new URL(listUrl(n)).pathname, doc);

  // exactly the shape the Rust issuer serves
  const mainList = await sign(listBody('1', hand), demo);
  serveList('1', mainList);
  fs.writeFileSync(path.join(work, 'status-list-1.json'),
    JSON.stringify(mainList, null, 2) + '\n');
  // made with the library's createList / createCredential (+ issuer)
  {
    const list = await createList({length: LIST_BITS});
    list.setStatus(3, true);
    const cred = await createCredential({id: listUrl('lib'), list,
      statusPurpose: 'revocation'});
    serveList('lib', await sign({...cred, issuer: demo.did}, demo));
  }
  // no validFrom at all (allowed)
  {
    const b = listBody('novalidfrom', hand);
    delete b.validFrom;
    serveList('novalidfrom', await sign(b, demo));
  }
  // negative lists
  serveList('nou', await sign(listBody('nou', hand.slice(1)), demo));
  {
    const t = await sign(listBody('tampered', hand), demo);
    t.credentialSubject.encodedList = handEncode([4]); // after signing
    serveList('tampered', t);
  }
  serveList('future', await sign(listBody('future', hand,
    {validFrom: iso(Date.now() + dayMs)}), demo));
  serveList('expired', await sign(listBody('expired', hand,
    {validUntil: iso(Date.now() - dayMs)}), demo));
  serveList('wrongid', await sign({...listBody('wrongid', hand),
    id: listUrl('1')}, demo));
  {
    const b = listBody('suspension', hand);
    b.credentialSubject.statusPurpose = 'suspension';
    serveList('suspension', await sign(b, demo));
  }
  serveList('other-issuer', await sign({...listBody('other-issuer', hand),
    issuer: other.did}, other));
  serveList('unsigned', listBody('unsigned', hand));
  serveList('signed-by-other-key', await sign(listBody(
    'signed-by-other-key', hand), other));

  // ---- 3. credentials pointing at the lists ----
  const status = (n, index, url = listUrl(n)) => ({
    id: `${url}#${index}`,
    type: 'BitstringStatusListEntry',
    statusPurpose: 'revocation',
    statusListIndex: String(index),
    statusListCredential: url
  });
  const minimal = (name, credentialStatus, issuer = demo) => ({
    '@context': [VC2],
    id: `urn:uuid:${crypto.randomUUID()}`,
    type: ['VerifiableCredential'],
    issuer: issuer.did,
    validFrom: past,
    credentialSubject: {id: 'did:example:subject', name},
    ...(credentialStatus === undefined ? {} : {credentialStatus})
  });
  const ob3Sample = JSON.parse(fs.readFileSync(
    path.join(here, 'sample-ob3-unsigned.vc.json'), 'utf8'));
  const ob3 = credentialStatus => ({...ob3Sample,
    issuer: {...ob3Sample.issuer, id: demo.did}, credentialStatus});

  const files = {};
  async function writeVc(name, doc, issuer = demo) {
    const f = path.join(work, `${name}.vc.json`);
    fs.writeFileSync(f, JSON.stringify(await sign(doc, issuer), null, 2) +
      '\n');
    files[name] = f;
  }
  await writeVc('min-3', minimal('min-3', status('1', 3)));
  await writeVc('min-4', minimal('min-4', status('1', 4)));
  await writeVc('ob3-3', ob3(status('1', 3)));
  await writeVc('ob3-4', ob3(status('1', 4)));
  await writeVc('lib-3', minimal('lib-3', status('lib', 3)));
  await writeVc('novalidfrom-3', minimal('novalidfrom-3',
    status('novalidfrom', 3)));
  await writeVc('array-3', minimal('array-3', [status('1', 3)]));
  // expected failures: [name, regex on the error]
  const negatives = [];
  async function neg(name, doc, re, issuer = demo) {
    await writeVc(name, doc, issuer);
    negatives.push([name, re]);
  }
  await neg('nou', minimal('nou', status('nou', 3)),
    /must start with the character "u"/);
  await neg('tampered', minimal('tampered', status('tampered', 3)),
    /not verified.*[Ii]nvalid signature|Invalid signature/s);
  await neg('future', minimal('future', status('future', 3)),
    /before "validFrom"/);
  await neg('expired', minimal('expired', status('expired', 3)),
    /after "validUntil"/);
  await neg('wrongid', minimal('wrongid', status('wrongid', 3)),
    /has id .* expected/);
  await neg('purpose', minimal('purpose', status('suspension', 3)),
    /status purpose "suspension".*does not match.*"revocation"/);
  await neg('list-issuer-mismatch', minimal('list-issuer-mismatch',
    status('other-issuer', 3)), /Issuers .* do not match/);
  await neg('vc-issuer-mismatch', minimal('vc-issuer-mismatch',
    status('1', 3), other), /Issuers .* do not match/, other);
  await neg('unsigned', minimal('unsigned', status('unsigned', 3)),
    /not verified/);
  await neg('signed-by-other-key', minimal('signed-by-other-key',
    status('signed-by-other-key', 3)), /not verified/);
  await neg('out-of-range', minimal('out-of-range', status('1', LIST_BITS)),
    /out of range/);
  await neg('not-found', minimal('not-found', status('missing', 3)),
    /Could not load.*HTTP 404/s);
  await neg('non-loopback', minimal('non-loopback', status('x', 3,
    'https://example.com/status-lists/1')), /not an http URL on 127\.0\.0\.1/);
  await neg('id-equals-list', minimal('id-equals-list', {
    ...status('1', 3), id: listUrl('1')}), /must not be/);
  // other status types: their terms are not in the v2 context, so these
  // VCs add the undefined-terms context (@vocab) to be signable in safe mode
  const undefinedTerms = doc => ({...doc, '@context': [VC2,
    'https://www.w3.org/ns/credentials/undefined-terms/v2']});
  await neg('unsupported-type', undefinedTerms(minimal('unsupported-type', {
    ...status('1', 4), type: 'StatusList2021Entry'})),
  /unsupported credentialStatus type "StatusList2021Entry"/);
  await neg('mixed-type', undefinedTerms(minimal('mixed-type', [
    status('1', 4), {id: 'urn:uuid:5f1c3f0e-0d7b-4a53-9a55-0a3c1f0d9a11',
      type: 'SomeOtherStatusEntry'}])),
  /unsupported credentialStatus type "SomeOtherStatusEntry"/);
  {
    const f = path.join(work, 'no-status.vc.json');
    fs.writeFileSync(f, JSON.stringify(await sign(
      minimal('no-status', undefined), demo)));
    files['no-status'] = f;
    negatives.push(['no-status', /no credentialStatus/]);
  }

  // for verify-vc.mjs / verify_vc.py (not check-status negatives)
  const suspension = index => ({...status('suspension', index),
    statusPurpose: 'suspension'});
  await writeVc('susp-3', minimal('susp-3', suspension(3)));
  await writeVc('susp-4', minimal('susp-4', suspension(4)));
  await writeVc('mixed-rev4-susp3', minimal('mixed-rev4-susp3',
    [status('1', 4), suspension(3)]));
  await writeVc('mixed-rev4-susp4', minimal('mixed-rev4-susp4',
    [status('1', 4), suspension(4)]));
  await writeVc('purpose-message', minimal('purpose-message',
    {...status('1', 4), statusPurpose: 'message'}));
  {
    // statusListIndex 4 (unset) -> 3 (set) AFTER signing: proof must fail
    const t = await sign(minimal('index-tampered', status('1', 4)), demo);
    t.credentialStatus.statusListIndex = '3';
    const f = path.join(work, 'index-tampered.vc.json');
    fs.writeFileSync(f, JSON.stringify(t, null, 2) + '\n');
    files['index-tampered'] = f;
  }
  // a list whose bit 5 is set later (revocation after issuance)
  serveList('live', await sign(listBody('live', handEncode([])), demo));
  await writeVc('live-5', minimal('live-5', status('live', 5)));

  // ---- 4. run the CLIs ----
  function run(script, args, exe = process.execPath) {
    return new Promise(resolve => {
      execFile(exe, [path.join(here, script), ...args],
        {cwd: here, timeout: 120000}, (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) :
            0;
          const lines = stdout.split('\n').filter(l => l.startsWith('{'))
            .map(l => JSON.parse(l));
          resolve({code, lines, stdout, stderr});
        });
    });
  }
  const byFile = lines => new Map(lines.map(l => [l.file, l]));

  const expectStatus = {
    'min-3': true, 'min-4': false, 'ob3-3': true, 'ob3-4': false,
    'lib-3': true, 'novalidfrom-3': true, 'array-3': true
  };
  {
    const names = Object.keys(expectStatus);
    const r = await run('check-status.mjs', names.map(n => files[n]));
    report('check-status: positives exit 0', r.code === 0,
      `exit ${r.code} ${r.stderr.trim()}`);
    const m = byFile(r.lines);
    for(const n of names) {
      const l = m.get(files[n]);
      report(`check-status: ${n} verified, status ${expectStatus[n]}`,
        !!l && l.verified === true && l.status === expectStatus[n] &&
        l.error === null, l ?? r.stdout);
    }
    report('check-status: summary line',
      new RegExp(`^check-status: ${names.length} checked \\(5 set, 2 unset\\)` +
        ', 0 failed$', 'm').test(r.stdout), r.stdout.split('\n').at(-2));
  }
  {
    const names = negatives.map(([n]) => n);
    const r = await run('check-status.mjs', names.map(n => files[n]));
    report('check-status: negatives exit 1', r.code === 1, `exit ${r.code}`);
    const m = byFile(r.lines);
    for(const [n, re] of negatives) {
      const l = m.get(files[n]);
      report(`check-status: ${n} rejected`,
        !!l && l.verified === false && l.status === null &&
        typeof l.error === 'string' && re.test(l.error), l ?? r.stdout);
    }
  }
  {
    const r = await run('check-status.mjs', [files['min-3'], files.nou]);
    report('check-status: one failure among passes -> exit 1',
      r.code === 1 && r.lines.length === 2, `exit ${r.code}`);
  }
  {
    const ok = await run('check-status.mjs',
      ['--api-base', `${origin}/issuers/demo`, files['min-3']]);
    report('check-status: --api-base matching -> exit 0',
      ok.code === 0 && ok.lines[0]?.status === true, ok.lines[0]);
    const bad = await run('check-status.mjs',
      ['--api-base', `${origin}/issuers/dem`, files['min-3']]);
    report('check-status: --api-base not a path prefix -> rejected',
      bad.code === 1 && /not under --api-base/.test(bad.lines[0]?.error),
      bad.lines[0]);
  }
  for(const args of [[], ['--api-base', 'https://example.com', 'x.json'],
    ['--bogus', 'x.json'], ['--api-base']]) {
    const r = await run('check-status.mjs', args);
    report(`check-status: usage error ${JSON.stringify(args)} -> exit 2`,
      r.code === 2, `exit ${r.code}`);
  }
  // ---- 5. verify-vc.mjs: status checked by default ----
  const SET = ['min-3', 'ob3-3', 'lib-3', 'novalidfrom-3', 'array-3'];
  const UNSET = ['min-4', 'ob3-4', 'susp-4', 'mixed-rev4-susp4', 'live-5'];
  const WITH_STATUS = [...SET, ...UNSET, 'susp-3', 'mixed-rev4-susp3'];
  async function expectCli(label, script, exe, args, names, expect, check) {
    const r = await run(script, ['--expect', expect, ...args,
      ...names.map(n => files[n])], exe);
    const m = byFile(r.lines);
    report(`${label}: exit 0`, r.code === 0,
      `exit ${r.code} ${r.stderr.trim()} ${r.code === 0 ? '' : r.stdout}`);
    for(const n of names) {
      const l = m.get(files[n]);
      report(`${label}: ${n}`, !!l && l.ok === true &&
        l.verified === (expect === 'valid') && check(l, n), l ?? r.stdout);
    }
  }
  const vjs = (label, args, names, expect, check) => expectCli(
    `verify-vc ${label}`, 'verify-vc.mjs', process.execPath, args, names,
    expect, check);
  await vjs('default, bit unset -> valid', [], UNSET, 'valid',
    l => l.status === 'unset' && l.error === null);
  await vjs('default, no credentialStatus -> valid', [], ['no-status'],
    'valid', l => l.status === 'none');
  await vjs('default, revocation bit set -> invalid', [], SET, 'invalid',
    l => l.status === 'set' &&
      /^revoked \(status list bit set\)$/.test(l.error));
  await vjs('default, suspension bit set -> invalid', [],
    ['susp-3', 'mixed-rev4-susp3'], 'invalid',
    l => l.status === 'set' &&
      /^suspended \(status list bit set\)$/.test(l.error));
  await vjs('default, statusPurpose "message" -> invalid', [],
    ['purpose-message'], 'invalid',
    l => /statusPurpose "message" is not supported/.test(l.error));
  await vjs('default, status check fails -> invalid', [],
    negatives.map(([n]) => n).filter(n => n !== 'no-status'), 'invalid',
    (l, n) => l.status === null &&
      /^credentialStatus not verified: /.test(l.error) &&
      negatives.find(([x]) => x === n)[1].test(l.error));
  await vjs('default, statusListIndex changed after signing -> invalid', [],
    ['index-tampered'], 'invalid',
    l => l.status === null && /[Ii]nvalid signature/.test(l.error));
  // revocation after issuance: same VC, list re-signed with bit 5 set
  serveList('live', await sign(listBody('live', handEncode([5])), demo));
  await vjs('default, after bit 5 set on the served list -> invalid', [],
    ['live-5'], 'invalid', l => l.status === 'set' &&
      /^revoked \(status list bit set\)$/.test(l.error));
  {
    const r = await run('check-status.mjs', [files['live-5']]);
    report('check-status: live-5 now set (list not cached)',
      r.code === 0 && r.lines[0]?.status === true, r.lines[0]);
  }
  {
    // bit set on one file among valid ones -> exit 1 with --expect valid
    const r = await run('verify-vc.mjs', ['--expect', 'valid',
      files['min-4'], files['min-3']]);
    report('verify-vc default: revoked among valid -> exit 1',
      r.code === 1 && r.lines.length === 2 &&
      r.lines[0].ok === true && r.lines[1].ok === false, r.stdout);
  }
  // ---- 6. --skip-status: proof only, whatever the bit ----
  await vjs('--skip-status -> valid whatever the bit', ['--skip-status'],
    [...WITH_STATUS, 'purpose-message', 'unsupported-type', 'not-found',
      'non-loopback'], 'valid', l => l.status === 'skipped' &&
      l.error === null);
  await vjs('--skip-status, no credentialStatus -> valid', ['--skip-status'],
    ['no-status'], 'valid', l => l.status === 'none');
  await vjs('--skip-status, statusListIndex changed after signing -> invalid',
    ['--skip-status'], ['index-tampered'], 'invalid',
    l => /[Ii]nvalid signature/.test(l.error));
  // ---- 7. verify_vc.py (status never checked) ----
  const pyArgs = extra => ['--contexts', contextsDir, ...extra];
  const vpy = (label, args, names, expect, check) => expectCli(
    `verify_vc.py ${label}`, 'verify_vc.py', python, pyArgs(args), names,
    expect, check);
  await vpy('--skip-status -> VCs with credentialStatus valid',
    ['--skip-status'], [...WITH_STATUS, 'purpose-message'], 'valid',
    l => l.status === 'skipped' && l.error === null);
  await vpy('--skip-status, no credentialStatus -> valid', ['--skip-status'],
    ['no-status'], 'valid', l => l.status === 'none');
  await vpy('--skip-status, statusListIndex changed after signing -> invalid',
    ['--skip-status'], ['index-tampered'], 'invalid',
    l => /signature verification failed/.test(l.error));
  await vpy('without --skip-status -> credentialStatus refused', [],
    ['min-3', 'min-4', 'ob3-4', 'array-3'], 'invalid',
    l => l.status === null && /^credentialStatus present: status checking is not implemented/.test(l.error));
  await vpy('without --skip-status, no credentialStatus -> valid', [],
    ['no-status'], 'valid', l => l.status === 'none');
} catch(e) {
  report('unexpected exception', false, String(e && e.stack || e));
} finally {
  server.close();
  if(!keepDir) {
    fs.rmSync(work, {recursive: true, force: true});
  }
}
process.stdout.write(`status-selftest: ${passed} passed, ${failed} failed\n`);
process.exitCode = failed === 0 ? 0 : 1;
