'use strict';
// One output-name rule: the ES3 port (shared/request.js outputName) gives the names of the golden table
// the Python SDK is held to (tests/golden/output_names.json, checked by tests/test_output_names.py), and
// the same names as genfx.request.output_name itself on random text.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const childProcess = require('child_process');
const es3 = require('../node/es3');

const REPO = path.resolve(__dirname, '..', '..');
const GOLDEN = path.join(REPO, 'tests', 'golden', 'output_names.json');
const golden = JSON.parse(fs.readFileSync(GOLDEN, 'utf8'));
const R = es3.request();
// What the server accepts (inference_server/validation.py NAME_PATTERN, no '..', no final '.').
const SERVER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

function serverAccepts(name) {
  return SERVER_NAME.test(name) && name.indexOf('..') < 0 && name.charAt(name.length - 1) !== '.';
}

test('the golden table is the shared one, with its tricky cases', () => {
  assert.ok(golden.cases.length >= 40);
  assert.ok(golden.cases.some((c) => c.text.indexOf('\n') >= 0));
  assert.ok(golden.cases.some((c) => /[\ud800-\udbff][\udc00-\udfff]/.test(c.text)), 'a character outside the BMP');
});

for (const c of golden.cases) {
  test('golden name: ' + c.why, () => {
    const name = R.outputName(c.text);
    assert.equal(name, c.name, JSON.stringify(c.text));
    assert.ok(name === '' || serverAccepts(name), name);
    assert.equal(R.outputName(name), name);
  });
}

test('buildGenerateRequest names the output with the same rule ("" leaves it to the server)', () => {
  const base = {
    prompt: 'dust',
    frameStart: 1,
    frameEnd: 2,
    fps: 24,
    camera: { width: 64, height: 36, samples: [{ frame: 1 }] },
  };
  assert.equal(R.buildGenerateRequest(Object.assign({ name: 'Shot 010 / Comp (v2)' }, base)).output.name, 'Shot_010_Comp_v2');
  assert.equal(R.buildGenerateRequest(Object.assign({ name: '\u65e5\u672c' }, base)).output.name, '');
  assert.equal(R.buildGenerateRequest(base).output.name, '');
});

// Random text, through both implementations: any rule the golden table misses still has to agree.
function pythonPath() {
  if (process.env.GENFX_PYTHON) return process.env.GENFX_PYTHON;
  const venv = path.join(REPO, '.venv', 'bin', 'python');
  return fs.existsSync(venv) ? venv : null;
}

function randomText(rand) {
  const pieces = ['a', 'Z', '7', '_', '-', '.', '..', ' ', '\n', '/', '\u00e9', '\u65e5', '\ud83d\udca5', '\ud800', '\t', '#', '$'];
  let s = '';
  const n = Math.floor(rand() * 24);
  for (let i = 0; i < n; i++) s += rand() < 0.5 ? pieces[Math.floor(rand() * pieces.length)] : 'abcXYZ019'.charAt(Math.floor(rand() * 9));
  if (rand() < 0.1) s += new Array(70).join('n');
  return s;
}

test('outputName agrees with the Python SDK on 2000 random texts', { skip: pythonPath() ? false : 'no .venv Python (run make setup)' }, () => {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const texts = [];
  for (let i = 0; i < 2000; i++) texts.push(randomText(rand));
  const script = 'import json, sys\nfrom genfx.request import output_name\n' +
    'print(json.dumps([output_name(t) for t in json.load(sys.stdin)]))';
  const out = childProcess.execFileSync(pythonPath(), ['-c', script], { cwd: REPO, input: JSON.stringify(texts) });
  const expected = JSON.parse(out.toString('utf8'));
  texts.forEach((t, i) => assert.equal(R.outputName(t), expected[i], JSON.stringify(t)));
});
