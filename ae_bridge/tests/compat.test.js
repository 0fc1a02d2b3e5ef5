'use strict';
// Static checks that the code can run where it has to:
//   - host/ and shared/ are ECMAScript 3 (ExtendScript): parsed with acorn at ecmaVersion 3;
//   - node/ and client/ run in CEP 11/12 (Node 15.9 / 17.7, Chromium 88 / 99): ES2020 syntax at most
//     (no `??=`, `||=`, class fields with #private, top-level await ...), and none of the newer APIs;
//   - production dependencies declare engines that include Node 15.9.
// scripts/cep_node_check.sh goes further and runs the client under real Node 15 and 17 binaries.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const acorn = require('acorn');

const ROOT = path.resolve(__dirname, '..');

function files(dir, re) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (re.test(e.name)) out.push(p);
    }
  };
  walk(path.join(ROOT, dir));
  return out.sort();
}

const ES3_FILES = files('host', /\.(jsx|js)$/).concat(files('shared', /\.js$/), files('acceptance', /\.jsx$/));
// ES3 reserves words ES5 allows as property names (a.default, {class: 1}, p.catch()): ExtendScript
// rejects them. acorn only checks that with allowReserved 'never' (false still allows property names).
const ES3 = { ecmaVersion: 3, sourceType: 'script', allowReserved: 'never' };
const RUNTIME_FILES = files('node', /\.js$/).concat(files('client', /\.js$/));

test('host and shared scripts are ECMAScript 3', () => {
  assert.ok(ES3_FILES.length >= 5);
  for (const f of ES3_FILES) {
    const src = fs.readFileSync(f, 'utf8');
    assert.doesNotThrow(
      () => acorn.parse(src, ES3),
      (e) => assert.fail(path.relative(ROOT, f) + ': not ES3: ' + e.message)
    );
    // ES3 features acorn accepts but ExtendScript mishandles or that break the shared loading.
    const code = src.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    assert.ok(!/\bJSON\s*\./.test(code.replace(/GenfxJSON/g, '')), path.relative(ROOT, f) + ' uses JSON (ExtendScript has none)');
    assert.ok(!/\bmodule\.exports\b|\brequire\(/.test(code), path.relative(ROOT, f) + ' uses CommonJS');
  }
});

test('the acorn ES3 check rejects ES5+ syntax (the check is live)', () => {
  const es5 = ['var o = { a: 1, };', 'let x = 1;', 'var f = (a) => a;', 'var o = { get x() { return 1; } };', 'var s = `t`;'];
  const reservedNames = ['a.default = 1;', 'var o = { class: 1 };', 'p.catch(f);'];
  for (const bad of es5.concat(reservedNames)) assert.throws(() => acorn.parse(bad, ES3), undefined, bad);
});

// API -> why it is out (first Node version that has it; CEP 11 is Node 15.9, CEP 12 Node 17.7).
const FORBIDDEN = [
  [/\bstructuredClone\s*\(/, 'structuredClone (Node 17.0, browser-only in Chromium 88)'],
  [/(^|[^.\w])fetch\s*\(/, 'fetch (Node 18; and CORS from file:// in CEP)'],
  [/require\(\s*['"]node:/, "require('node:...') (Node 16 / 14.18)"],
  [/\.at\(\s*-?\d/, 'Array.prototype.at (Node 16.6)'],
  [/\bObject\.hasOwn\s*\(/, 'Object.hasOwn (Node 16.9)'],
  [/\bAbortSignal\.timeout\b/, 'AbortSignal.timeout (Node 17.3)'],
  [/\.findLast(Index)?\s*\(/, 'Array.prototype.findLast (Node 18)'],
  [/\.(toSorted|toReversed|toSpliced)\s*\(/, 'change-array-by-copy (Node 20)'],
  [/\bimport\s*\(/, 'dynamic import (no ESM in the panel)'],
  [/\bawait\b/, 'await (kept out so the code reads the same on every runtime)'],
];

test('panel and Node code use ES2020 syntax at most and no API newer than Node 15.9', () => {
  assert.ok(RUNTIME_FILES.length >= 5);
  for (const f of RUNTIME_FILES) {
    const rel = path.relative(ROOT, f);
    const src = fs.readFileSync(f, 'utf8');
    assert.doesNotThrow(
      () => acorn.parse(src, { ecmaVersion: 2020, sourceType: 'script', allowHashBang: true }),
      (e) => assert.fail(rel + ': syntax newer than ES2020: ' + e.message)
    );
    const code = src.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const [re, why] of FORBIDDEN) assert.ok(!re.test(code), rel + ' uses ' + why);
  }
  assert.throws(() => acorn.parse('a ??= 1;', { ecmaVersion: 2020 }), undefined, 'the ES2020 check is live');
});

const CEP11_NODE = [15, 9, 0];

function cmp(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** Does an engines.node range admit version v? Handles the forms in our tree: >=X.Y.Z, ^X, X.*, A || B. */
function admits(range, v) {
  return String(range)
    .split('||')
    .some((alt) => {
      const m = /^\s*(>=|\^|~)?\s*v?(\d+)(?:\.(\d+|\*|x))?(?:\.(\d+|\*|x))?\s*$/.exec(alt);
      if (!m) throw new Error('engines range not understood: ' + range);
      const wild = (x) => x === undefined || x === '*' || x === 'x';
      const min = [Number(m[2]), wild(m[3]) ? 0 : Number(m[3]), wild(m[4]) ? 0 : Number(m[4])];
      if (m[1] === '>=') return cmp(v, min) >= 0;
      if (m[1] === '^' || wild(m[3])) return v[0] === min[0] && cmp(v, min) >= 0;
      if (m[1] === '~' || wild(m[4])) return v[0] === min[0] && v[1] === min[1] && cmp(v, min) >= 0;
      return cmp(v, min) === 0;
    });
}

test("production dependencies' engines include CEP 11's Node 15.9", () => {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const prod = Object.keys(lock.packages).filter((p) => p.startsWith('node_modules/') && !lock.packages[p].dev);
  assert.ok(prod.some((p) => p.endsWith('@grpc/grpc-js')));
  for (const p of prod) {
    const engines = lock.packages[p].engines;
    if (!engines || !engines.node) continue;
    assert.ok(admits(engines.node, CEP11_NODE), p + ' needs Node ' + engines.node + ' but CEP 11 has 15.9.0');
    assert.ok(admits(engines.node, [17, 7, 1]), p + ' needs Node ' + engines.node + ' but CEP 12 has 17.7.1');
  }
  assert.equal(admits('>=16', CEP11_NODE), false, 'the engines check is live');
  // And nothing native: CEP cannot load compiled addons.
  for (const p of prod) assert.ok(!lock.packages[p].hasInstallScript || /protobufjs$/.test(p), p + ' has an install script');
});
