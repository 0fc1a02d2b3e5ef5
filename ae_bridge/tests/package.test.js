'use strict';
// scripts/package_zxp.sh: stages a self-contained extension (production deps only, no symlinks, no
// .debug) and drives ZXPSignCmd correctly. ZXPSignCmd is Adobe's binary and is not here, so a fake
// one on $ZXPSIGNCMD records its arguments; the real signing is checked by hand (README).
const test = require('node:test');
const assert = require('node:assert/strict');
const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');

function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push({ path: p, link: e.isSymbolicLink() });
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

test('package_zxp.sh stages a clean extension and signs it with ZXPSignCmd', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'genfx-zxp-'));
  const calls = path.join(tmp, 'calls.txt');
  const fake = path.join(tmp, 'ZXPSignCmd');
  fs.writeFileSync(
    fake,
    '#!/bin/sh\necho "$@" >> "' + calls + '"\n' +
      'if [ "$1" = "-selfSignedCert" ]; then echo cert > "$7"; fi\n' +
      'if [ "$1" = "-sign" ]; then echo zxp > "$3"; fi\n'
  );
  fs.chmodSync(fake, 0o755);
  const dist = path.join(tmp, 'dist');
  const out = childProcess.execFileSync('bash', [path.join(ROOT, 'scripts', 'package_zxp.sh')], {
    cwd: ROOT,
    env: Object.assign({}, process.env, { ZXPSIGNCMD: fake, GENFX_ZXP_DIST: dist }),
    encoding: 'utf8',
  });
  const version = require('../package.json').version;
  const zxp = path.join(dist, 'genfx-ae-' + version + '.zxp');
  assert.match(out, new RegExp('wrote ' + zxp.replace(/[.\\/]/g, '\\$&')));
  const stage = path.join(dist, 'com.genfx.ae');
  const lines = fs.readFileSync(calls, 'utf8').trim().split('\n');
  assert.match(lines[0], /^-selfSignedCert US CA GenFX GenFX AE panel genfx-dev .*genfx-selfsigned\.p12$/);
  assert.equal(lines[1], ['-sign', stage, zxp, path.join(dist, 'genfx-selfsigned.p12'), 'genfx-dev'].join(' '));
  assert.equal(lines[2], '-verify ' + zxp);

  const entries = walk(stage, []);
  assert.deepEqual(entries.filter((e) => e.link), [], 'no symlinks');
  const rel = entries.map((e) => path.relative(stage, e.path));
  for (const must of ['CSXS/manifest.xml', 'client/index.html', 'host/index.jsx', 'host/genfx_host.jsx', 'host/lib/json.js',
    'shared/camera.js', 'shared/request.js', 'node/genfx_client.js', 'protos/genfx/v1/genfx.proto',
    'node_modules/@grpc/grpc-js/package.json', 'node_modules/@grpc/proto-loader/package.json']) {
    assert.ok(rel.indexOf(must) >= 0, 'staged ' + must);
  }
  for (const mustNot of ['.debug', 'tests', 'scripts', 'node_modules/typescript', 'node_modules/acorn', 'node_modules/types-for-adobe', 'node_modules/.bin', 'host/types']) {
    assert.ok(rel.indexOf(mustNot) < 0, 'not staged: ' + mustNot);
  }
  // The staged copy works on its own: its client loads its proto with its own node_modules.
  const check = childProcess.execFileSync(process.execPath, ['-e',
    "const c = require(process.argv[1]); console.log(Object.keys(c.loadProto().GenFX.service).length, require.resolve('@grpc/grpc-js', { paths: [process.argv[2]] }))",
    path.join(stage, 'node', 'genfx_client.js'), path.join(stage, 'node')], { encoding: 'utf8' });
  assert.match(check, new RegExp('^11 ' + stage.replace(/[.\\/]/g, '\\$&')));
});
