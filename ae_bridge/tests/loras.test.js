'use strict';
// LoRAs in the panel, against a REAL GenFX server serving a trained LoRA for the tiny model (built
// from config by tests/trained_weights.py, laid out as `genfx-train fit` writes a run): the menu lists
// the server's LoRAs, the rows reach GenerateRequest.loras with their weights, the layer comment names
// them, a bad row is named before anything is sent and the server's refusal names loras[i].
const test = require('node:test');
const assert = require('node:assert/strict');
const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');
const { startServer, pythonPath } = require('./helpers/server');
const { fakeAeProject, tmpdir } = require('./helpers/ae_project');
const { PanelController } = require('../node/panel_controller');
const es3 = require('../node/es3');

const ROOT = path.resolve(__dirname, '..');
const REPO = path.resolve(ROOT, '..');
const R = es3.request();

// The tiny model where the server keeps its built-in one, a run with a LoRA for it, and a models
// config serving both (as tests/test_loras_sim_e2e.py does).
const BUILD = `
import json, sys
from pathlib import Path
from inference_server.models import model_hash
from inference_server.tiny_model import ensure_tiny_model
from tests.trained_weights import make_run
data = Path(sys.argv[1])
tiny = ensure_tiny_model(data / "models")
run = make_run(data / "runs" / "collapse", tiny, model_hash(tiny), controlnet=False)
config = {"models": {"collapse": {"path": str(tiny)}}, "loras": {"dust": str(run / "lora")}}
(data / "models.json").write_text(json.dumps(config))
`;

let server;

test.before(async () => {
  const dataDir = tmpdir('loras');
  const built = childProcess.spawnSync(pythonPath(), ['-c', BUILD, dataDir], { cwd: REPO, encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  server = await startServer({ dataDir: dataDir, extraArgs: ['--models-config', path.join(dataDir, 'models.json')] });
});

test.after(async () => {
  if (server) await server.stop();
});

test('loraRefs: rows become LoraRefs; an empty name or a weight that is not a number is named', () => {
  assert.deepEqual(R.loraRefs([{ name: ' dust ', weight: '0.8' }, { name: 'grit', weight: '' }]), [
    { name: 'dust', weight: 0.8 },
    { name: 'grit', weight: 0 },
  ]);
  assert.throws(() => R.loraRefs([{ name: 'dust', weight: 1 }, { name: '', weight: 1 }]), /^Error: loras\[1\]\.name: pick a LoRA/);
  assert.throws(() => R.loraRefs([{ name: 'dust', weight: 'strong' }]), /^Error: loras\[0\]\.weight: must be a number \(got strong\)/);
  const comment = R.layerComment({ jobId: 'j', seed: 1, model: 'm', loras: [{ name: 'dust', weight: 0.8 }, { name: 'grit', weight: 0 }], prompt: 'p' });
  assert.match(comment, / \| loras: dust \u00d70\.8, grit \u00d71 \| /); // 0 = 1.0, as the SDK's provenance writes it
});

test('the LoRA menu lists the server\'s LoRAs, those for the chosen model first', async () => {
  const panel = new PanelController({ host: () => Promise.reject(new Error('no host needed')) });
  const info = await panel.connect(server.address, '');
  const dust = info.loras.filter((l) => l.name === 'dust')[0];
  assert.ok(dust && dust.hash.length === 64 && dust.models.indexOf('collapse') >= 0);
  const choices = panel.loraChoices('collapse');
  assert.deepEqual(choices.map((c) => [c.name, c.fits]), [['dust', true]]);
  assert.equal(choices[0].label, 'dust \u2014 for ' + dust.models.join(', ') + ' \u00b7 ' + dust.hash.slice(0, 12));
  assert.equal(panel.maxLoraWeight(), info.limits.max_lora_weight);
  assert.ok(panel.maxLoraWeight() > 0);
  panel.close();
});

test('the panel page: + LoRA, pick it, set a weight, Generate: the job carries it and the layer says so', async () => {
  const { createPage, waitFor } = require('./mock/fake_dom');
  const { ae, comp } = fakeAeProject();
  const page = createPage({
    root: ROOT,
    evalScript: (script) => ae.evalScript(script),
    localStorage: { 'genfx.settings.v1': JSON.stringify({ address: server.address, token: '' }) },
  });
  const $ = page.byId;
  await waitFor(() => /^GenFX /.test($['server-status'].textContent), 60000, 'connection');
  await waitFor(() => /shot010_comp/.test($['comp-summary'].textContent), 10000, 'comp summary');
  $['add-lora'].click();
  const row = $['lora-rows'].children[0];
  const [select, weight, remove] = row.children;
  assert.deepEqual(select.children.map((o) => o.value), ['dust']);
  assert.equal(weight.max, String(-Number(weight.min)));
  select.value = 'dust';
  weight.value = '0.6';
  $['add-lora'].click(); // a second row, removed again: only the first reaches the request
  $['lora-rows'].children[1].children[2].click();
  assert.equal($['lora-rows'].children.length, 1);
  assert.ok(remove);
  $['prompt'].value = 'dusty collapse';
  $['seed'].value = '3';
  $['steps'].value = '1';
  $['model'].value = 'collapse';
  $['frame-end'].value = '1003'; // one frame
  $['frame-end'].dispatch('input');
  $['go'].click();
  await waitFor(() => /^Done: /.test($['progress-text'].textContent), 120000, 'generate');
  const layer = comp._layers.filter((l) => l.name === 'AI \u00b7 dusty collapse')[0];
  assert.ok(layer, $['log'].textContent);
  assert.match(layer.comment, / \| loras: dust \u00d70\.6 \| /);
  const jobId = /GenFX job (\S+)/.exec(layer.comment)[1];
  const manifest = JSON.parse(fs.readFileSync(path.join(server.dataDir, 'jobs', jobId, 'manifest.json'), 'utf8'));
  assert.match(JSON.stringify(manifest), /"dust"/); // the server applied and recorded it
  const panel = new PanelController({ host: () => Promise.reject(new Error('unused')) });
  await panel.connect(server.address, '');
  const job = await panel.client.getJob(jobId);
  assert.deepEqual(job.request.loras.map((l) => [l.name, Math.round(l.weight * 100) / 100]), [['dust', 0.6]]);
  panel.close();
});

test('a bad row is named before the camera is sampled; a weight past the server\'s limit is refused naming loras[0]', async () => {
  const { host } = fakeAeProject();
  let hostCalls = 0;
  const panel = new PanelController({ host: (fn, args, o) => { hostCalls++; return host(fn, args, o); } });
  const info = await panel.connect(server.address, '');
  await assert.rejects(panel.generate({ prompt: 'p', model: 'collapse', loras: [{ name: '', weight: 1 }] }), /loras\[0\]\.name/);
  assert.equal(hostCalls, 0);
  const tooStrong = info.limits.max_lora_weight + 1;
  await assert.rejects(
    panel.generate({ prompt: 'p', model: 'collapse', steps: 1, loras: [{ name: 'dust', weight: tooStrong }] }),
    (e) => /INVALID_ARGUMENT/.test(e.message) && /loras\[0\]/.test(e.message)
  );
  panel.close();
});
