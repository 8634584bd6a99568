#!/usr/bin/env node
// Writes every JSON-LD context the JS offline loader knows (from the pinned
// npm context packages, see contexts.mjs) into OUTDIR as JSON files, plus
// OUTDIR/index.json mapping context URL -> file name (and the npm package it
// came from), so that verify_vc.py canonicalizes with the npm-published
// contexts rather than with anything from the Rust service.
//
// Usage: node export-contexts.mjs OUTDIR
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {knownContexts} from './contexts.mjs';

const outDir = process.argv[2];
if(!outDir || process.argv.length !== 3) {
  console.error('usage: node export-contexts.mjs OUTDIR');
  process.exit(2);
}
fs.mkdirSync(outDir, {recursive: true});

function fileNameFor(url) {
  const slug = url.replace(/^[a-z]+:\/\//i, '').replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '').slice(0, 80);
  const h = crypto.createHash('sha256').update(url).digest('hex').slice(0, 12);
  return `${slug}-${h}.json`;
}

const index = {};
const packages = {};
for(const [url, {document, source}] of knownContexts()) {
  const name = fileNameFor(url);
  fs.writeFileSync(path.join(outDir, name), JSON.stringify(document, null, 2) +
    '\n');
  index[url] = name;
  packages[url] = source;
}
const sorted = o => Object.fromEntries(Object.entries(o).sort());
fs.writeFileSync(path.join(outDir, 'index.json'),
  JSON.stringify(sorted(index), null, 2) + '\n');
fs.writeFileSync(path.join(outDir, 'sources.json'),
  JSON.stringify(sorted(packages), null, 2) + '\n');
console.error(`export-contexts: wrote ${Object.keys(index).length} contexts ` +
  `to ${outDir}`);
