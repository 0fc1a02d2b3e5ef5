'use strict';
// `npm run typecheck` (tsc -p tsconfig.json) checks host/ and shared/ against types-for-adobe's
// After Effects 24.0 typings. This test makes sure that check has teeth: the same configuration
// rejects a fixture with a misspelt DOM property, JSON, an ES5 array method and a wrong type.
const test = require('node:test');
const assert = require('node:assert/strict');
const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

test('tsc with the host configuration rejects wrong ExtendScript', () => {
  const base = JSON.parse(
    fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')
  );
  const files = base.files.filter((f) => f.endsWith('.d.ts')).map((f) => path.join(ROOT, f));
  files.push(path.join(ROOT, 'tests', 'fixtures', 'bad_host.jsx'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'genfx-tsc-'));
  const cfg = path.join(tmp, 'tsconfig.json');
  fs.writeFileSync(cfg, JSON.stringify({ compilerOptions: base.compilerOptions, files: files }));
  const r = childProcess.spawnSync(process.execPath, [TSC, '-p', cfg], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  const out = r.stdout + r.stderr;
  assert.match(out, /bad_host\.jsx\(4,\d+\): error TS2551: Property 'strtTime' does not exist on type 'AVLayer'/);
  assert.match(out, /bad_host\.jsx\(5,\d+\): error TS2304: Cannot find name 'JSON'/);
  assert.match(out, /bad_host\.jsx\(6,\d+\): error TS2339: Property 'forEach' does not exist/);
  assert.match(out, /bad_host\.jsx\(7,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
  assert.equal((out.match(/error TS/g) || []).length, 4, out);
});
