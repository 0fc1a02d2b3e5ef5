#!/usr/bin/env node
'use strict';
// Copies the wire contract from the repo (../protos) into the extension (protos/), which is what the
// panel loads at run time and what the ZXP ships. `--check` only compares (tests/proto_copy.test.js).
const fs = require('fs');
const path = require('path');

const FILES = ['genfx/v1/genfx.proto'];
const SRC = path.resolve(__dirname, '..', '..', 'protos');
const DEST = path.resolve(__dirname, '..', 'protos');

function differences() {
  return FILES.filter((f) => {
    const a = path.join(SRC, f);
    const b = path.join(DEST, f);
    return !fs.existsSync(b) || !fs.readFileSync(a).equals(fs.readFileSync(b));
  });
}

if (require.main === module) {
  if (process.argv.indexOf('--check') >= 0) {
    const diff = differences();
    if (diff.length) {
      console.error('ae_bridge/protos is stale: ' + diff.join(', ') + ' (run: npm run sync-proto)');
      process.exit(1);
    }
    console.log('ae_bridge/protos matches ../protos');
  } else {
    for (const f of FILES) {
      fs.mkdirSync(path.dirname(path.join(DEST, f)), { recursive: true });
      fs.copyFileSync(path.join(SRC, f), path.join(DEST, f));
      console.log('copied protos/' + f + ' -> ae_bridge/protos/' + f);
    }
  }
}

module.exports = { differences, FILES, SRC, DEST };
