#!/usr/bin/env node
// TEST/DEV ONLY: (re-)sign a VC with the digitalbazaar libraries so that the
// verifiers can be exercised against a DID document served on loopback.
//
// Usage: node sign-test-vc.mjs --did DID --key-id KEYID [--seed-hex HEX64]
//          [--created ISO] [--print-did-doc] IN.json OUT.json
// Rewrites issuer (id) to DID, drops any existing proof, signs with the
// Ed25519 key derived from the seed (default: 32 bytes of 0x07) and
// verificationMethod DID#KEYID. With --print-did-doc, prints a DID document
// listing that key (in verificationMethod and assertionMethod) on stdout.
import fs from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {knownContexts} from './contexts.mjs';

const args = process.argv.slice(2);
const opt = {seedHex: '07'.repeat(32), files: []};
for(let i = 0; i < args.length; i++) {
  const a = args[i];
  if(a === '--did') {
    opt.did = args[++i];
  } else if(a === '--key-id') {
    opt.keyId = args[++i];
  } else if(a === '--seed-hex') {
    opt.seedHex = args[++i];
  } else if(a === '--created') {
    opt.created = args[++i];
  } else if(a === '--print-did-doc') {
    opt.printDidDoc = true;
  } else {
    opt.files.push(a);
  }
}
if(!opt.did || !opt.keyId || opt.files.length !== 2 ||
  !/^[0-9a-fA-F]{64}$/.test(opt.seedHex)) {
  console.error('usage: node sign-test-vc.mjs --did DID --key-id KEYID ' +
    '[--seed-hex HEX64] [--created ISO] [--print-did-doc] IN.json OUT.json');
  process.exit(2);
}
const seed = Uint8Array.from(Buffer.from(opt.seedHex, 'hex'));
const vmId = `${opt.did}#${opt.keyId}`;
const key = await Ed25519Multikey.generate({seed, id: vmId, controller: opt.did});

const contexts = knownContexts();
const documentLoader = async url => {
  if(contexts.has(url)) {
    return {contextUrl: null, documentUrl: url,
      document: contexts.get(url).document};
  }
  throw new Error(`offline loader refused ${url}`);
};

const [inFile, outFile] = opt.files;
const doc = JSON.parse(fs.readFileSync(inFile, 'utf8'));
delete doc.proof;
if(doc.issuer && typeof doc.issuer === 'object') {
  doc.issuer = {...doc.issuer, id: opt.did};
} else {
  doc.issuer = opt.did;
}
const suite = new DataIntegrityProof({
  signer: key.signer(), cryptosuite,
  ...(opt.created ? {date: opt.created} : {})
});
const signed = await vc.issue({credential: doc, suite, documentLoader});
fs.writeFileSync(outFile, JSON.stringify(signed, null, 2) + '\n');
if(opt.printDidDoc) {
  console.log(JSON.stringify({
    '@context': ['https://www.w3.org/ns/did/v1',
      'https://w3id.org/security/multikey/v1'],
    id: opt.did,
    verificationMethod: [{
      id: vmId, type: 'Multikey', controller: opt.did,
      publicKeyMultibase: key.publicKeyMultibase
    }],
    assertionMethod: [vmId]
  }, null, 2));
} else {
  console.error(`signed with ${vmId} (${key.publicKeyMultibase})`);
}
