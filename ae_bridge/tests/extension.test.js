'use strict';
// The extension's static parts: manifest (host, runtimes, Node flags, paths that exist), .debug,
// the packaged proto copy, and the ES3 JSON codec.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const es3 = require('../node/es3');
const sync = require('../scripts/sync_proto');

const ROOT = path.resolve(__dirname, '..');
const manifest = fs.readFileSync(path.join(ROOT, 'CSXS', 'manifest.xml'), 'utf8');

function tag(xml, name) {
  const out = [];
  const re = new RegExp('<' + name + '\\b([^>]*?)/?>([^<]*)', 'g');
  let m;
  while ((m = re.exec(xml))) {
    const attrs = {};
    m[1].replace(/(\w+)="([^"]*)"/g, (_, k, v) => {
      attrs[k] = v;
    });
    out.push({ attrs: attrs, text: m[2].trim() });
  }
  return out;
}

test('manifest: AEFT [24.0,99.9], CSXS 11.0 minimum (CEP 11 and 12), Node in mixed context', () => {
  assert.deepEqual(tag(manifest, 'Host').map((h) => h.attrs), [{ Name: 'AEFT', Version: '[24.0,99.9]' }]);
  assert.deepEqual(tag(manifest, 'RequiredRuntime').map((h) => h.attrs), [{ Name: 'CSXS', Version: '11.0' }]);
  const params = tag(manifest, 'Parameter').map((p) => p.text);
  assert.deepEqual(params.sort(), ['--enable-nodejs', '--mixed-context']);
  // CEFCommandLine only counts inside <Resources> (otherwise Node silently stays off).
  assert.match(manifest, /<Resources>[\s\S]*<CEFCommandLine>[\s\S]*<\/CEFCommandLine>[\s\S]*<\/Resources>/);
  assert.ok(Number(tag(manifest, 'ExtensionManifest')[0].attrs.Version) >= 5);
  assert.equal(tag(manifest, 'Size').length, 1, 'CEP 9+ needs a <Size>');
});

test('manifest paths exist and ids agree with .debug', () => {
  const main = tag(manifest, 'MainPath')[0].text;
  const script = tag(manifest, 'ScriptPath')[0].text;
  assert.ok(fs.existsSync(path.join(ROOT, main)), main);
  assert.ok(fs.existsSync(path.join(ROOT, script)), script);
  const ids = tag(manifest, 'Extension').map((e) => e.attrs.Id);
  assert.deepEqual([...new Set(ids)], ['com.genfx.ae.panel']);
  const bundle = tag(manifest, 'ExtensionManifest')[0].attrs.ExtensionBundleId;
  assert.ok(ids[0].startsWith(bundle + '.'));
  const debug = fs.readFileSync(path.join(ROOT, '.debug'), 'utf8');
  assert.deepEqual(tag(debug, 'Extension').map((e) => e.attrs.Id), ['com.genfx.ae.panel']);
  const port = Number(tag(debug, 'Host')[0].attrs.Port);
  assert.ok(port >= 1024 && port <= 65534);
  // `#` anywhere in an extension path stops CEP from loading it.
  assert.ok(!/#/.test(main + script));
  const html = fs.readFileSync(path.join(ROOT, main), 'utf8');
  for (const src of html.match(/(?:src|href)="([^"]+)"/g).map((s) => s.split('"')[1])) {
    assert.ok(fs.existsSync(path.join(ROOT, path.dirname(main), src)), 'index.html refers to ' + src);
  }
});

test('the packaged proto is an exact copy of ../protos (run `npm run sync-proto` after changing it)', () => {
  assert.deepEqual(sync.differences(), [], 'stale copy');
  for (const f of sync.FILES) {
    assert.ok(fs.readFileSync(path.join(sync.SRC, f)).equals(fs.readFileSync(path.join(sync.DEST, f))), f);
  }
});

test('the gRPC client loads the packaged proto with every RPC of the contract', () => {
  const { loadProto } = require('../node/genfx_client');
  const svc = loadProto().GenFX.service;
  const src = fs.readFileSync(path.join(sync.SRC, 'genfx/v1/genfx.proto'), 'utf8');
  const rpcs = (src.match(/^\s*rpc (\w+)/gm) || []).map((l) => l.trim().split(/\s+/)[1]).sort();
  assert.deepEqual(Object.keys(svc).sort(), rpcs);
  assert.ok(rpcs.indexOf('FetchFrame') >= 0 && svc.FetchFrame.responseStream);
});

test('GenfxJSON (ES3) round-trips like JSON and escapes what ES3 string literals cannot hold', () => {
  const J = es3.json();
  const values = [
    null, true, false, 0, -0.5, 1e-7, 123456789012, 'plain', 'quote " backslash \\ tab \t nl \n',
    'unicode é ü 日本 😀', '\u2028\u2029\u0000\u001f', [], {}, [1, [2, [3, { a: [] }]]],
    { nested: { k: 'v', n: [1.5, -2, null] }, 'odd key "x"': 1 },
  ];
  for (const v of values) {
    const s = J.stringify(v);
    assert.deepEqual(JSON.parse(s), v, 'stringify ' + JSON.stringify(v));
    assert.deepEqual(J.parse(JSON.stringify(v)), v, 'parse ' + JSON.stringify(v));
    assert.ok(!/[\u2028\u2029]/.test(s));
  }
  assert.equal(J.stringify({ a: undefined, b: function () {}, c: NaN, d: [undefined] }), '{"c":null,"d":[null]}');
  assert.deepEqual(J.parse(' {"a" : [ 1 , 2e3 , -0.25E-2 ] , "b":"\\u00e9\\/"} '), { a: [1, 2000, -0.0025], b: 'é/' });
  for (const bad of ['', '{', '[1,]', '{"a":1,}', "{'a':1}", '01', '1.', 'tru', '"\u0001"', '[1] x', 'NaN']) {
    assert.throws(() => J.parse(bad), /GenfxJSON\.parse/, JSON.stringify(bad));
  }
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => J.stringify(cyclic), /cyclic/);
});

test('host bridge: the evalScript text is valid ES3 and survives any prompt text', () => {
  const acorn = require('acorn');
  const { buildHostCall, parseHostResult } = require('../node/host_bridge');
  const script = buildHostCall('importSequence', { prompt: 'line\u2028sep "quotes" \\ and é', n: 1 });
  acorn.parse(script, { ecmaVersion: 3 });
  assert.throws(() => buildHostCall('x); alert(1', {}), /bad host function name/);
  assert.equal(parseHostResult('{"ok":true,"value":3}'), 3);
  assert.throws(() => parseHostResult('{"ok":false,"error":"boom","line":12}'), (e) => e.message === 'boom' && e.line === 12);
  assert.throws(() => parseHostResult('EvalScript error.'), /did not answer/);
});

test('a host call that After Effects never answers (a modal dialog) fails after its timeout', async () => {
  const { makeHost } = require('../node/host_bridge');
  const answers = [];
  const host = makeHost((script, callback) => answers.push(callback), { timeoutMs: 50 });
  const started = Date.now();
  const outcome = await Promise.race([
    host('compInfo', {}).then(() => 'answered', (e) => e),
    new Promise((resolve) => setTimeout(() => resolve('still waiting'), 2000)),
  ]);
  assert.ok(outcome instanceof Error, String(outcome));
  assert.match(outcome.message, /did not answer compInfo within 0 s: close any open dialog/);
  assert.ok(Date.now() - started < 1000);
  answers[0]('{"ok":true,"value":1}'); // the late answer is dropped, not thrown
  const slow = makeHost((script, callback) => setTimeout(() => callback('{"ok":true,"value":2}'), 80), { timeoutMs: 10 });
  assert.equal(await slow('ping', {}, { timeoutMs: 1000 }), 2); // a longer limit for one call
});
