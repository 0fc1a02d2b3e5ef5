'use strict';
// The Node gRPC client (node/genfx_client.js) and the panel controller against a REAL GenFX server
// subprocess with the built-in tiny model: generate, progress events, chunked FetchFrame to disk with
// sha256 checks (frames on disk equal the server's), resume, cancel, list, token auth; then the whole
// panel flow with the host script running in the fake AE DOM.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startServer } = require('./helpers/server');
const { fakeAeProject } = require('./helpers/ae_project');
const { GenfxClient, grpc } = require('../node/genfx_client');
const { PanelController } = require('../node/panel_controller');
const es3 = require('../node/es3');

const ROOT = path.resolve(__dirname, '..');
const C = es3.camera();
const R = es3.request();
const TOKEN = 'ae-bridge-test-token';

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function tmpdir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'genfx-ae-' + tag + '-'));
}

function smallRequest(overrides) {
  const o = Object.assign({ frames: 3, frameStart: 1001, steps: 2, seed: 7, name: 'aetest' }, overrides || {});
  const cam = C.aeDefaultCamera(64, 64);
  const samples = [];
  for (let f = o.frameStart; f < o.frameStart + o.frames; f++) {
    const m = cam.matrix.slice();
    m[3] += 2 * (f - o.frameStart); // a small truck right: one sample per frame
    samples.push(C.fromAfterEffects(m, { frame: f, zoom: cam.zoom, compWidth: 64, compHeight: 64 }));
  }
  return R.buildGenerateRequest({
    prompt: o.prompt || 'a building collapses, dust',
    seed: o.seed,
    steps: o.steps,
    model: 'tiny',
    frameStart: o.frameStart,
    frameEnd: o.frameStart + o.frames - 1,
    fps: 24,
    width: 64,
    height: 64,
    name: o.name,
    camera: { width: 64, height: 64, samples: samples },
    clientTag: o.clientTag || 'ae-bridge-test',
  });
}

let server;
let client;
let firstJob = null; // the 3-frame job of the generate test, reused by the resume test

test.before(async () => {
  server = await startServer({ token: TOKEN });
  client = new GenfxClient(server.address, { token: TOKEN, timeoutMs: 60000 });
});

test.after(async () => {
  if (client) client.close();
  if (server) await server.stop();
});

test('GetServerInfo lists the tiny model and says a token is required', async () => {
  const info = await client.getServerInfo();
  assert.ok(info.models.some((m) => m.name === 'tiny'));
  assert.equal(info.auth_required, true);
  assert.ok(info.limits.max_frames_per_job > 0);
});

test('a call without the token is UNAUTHENTICATED', async () => {
  const anon = new GenfxClient(server.address);
  try {
    await assert.rejects(anon.getServerInfo(), (e) => e.code === grpc.status.UNAUTHENTICATED && /^UNAUTHENTICATED: /.test(e.message));
  } finally {
    anon.close();
  }
});

test('a bad request is INVALID_ARGUMENT naming the field', async () => {
  const req = smallRequest();
  req.steps = 100000;
  await assert.rejects(client.submitJob(req), (e) => e.code === grpc.status.INVALID_ARGUMENT && /steps/.test(e.message));
});

test('generate: progress events, frame-done events, fetch to disk with sha256, equal to the server files', async () => {
  const events = [];
  const g = await client.generate(smallRequest(), (ev) => events.push(ev));
  const job = await g.done;
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED');
  assert.deepEqual(job.frame_infos.map((i) => i.frame), [1001, 1002, 1003]);
  assert.equal(job.file_pattern, 'aetest.####.exr');
  assert.equal(job.seed, '7');

  const kinds = events.map((e) => e.kind);
  const progress = events.filter((e) => e.kind === 'progress').map((e) => e.progress);
  assert.ok(progress.length >= 3, 'progress events: ' + kinds.join(','));
  assert.ok(progress.every((p) => p.steps === 2 && p.step >= 1 && p.step <= 2 && p.frames_total === 3));
  const fractions = progress.map((p) => p.fraction);
  assert.deepEqual(fractions, fractions.slice().sort((a, b) => a - b), 'progress is monotonic');
  const done = events.filter((e) => e.kind === 'frame_done').map((e) => e.frame_done);
  assert.deepEqual(done.map((d) => d.frame), [1001, 1002, 1003]);
  assert.deepEqual(events.filter((e) => e.kind === 'state').map((e) => e.state.state).slice(-1), ['JOB_STATE_SUCCEEDED']);
  // Stored events come in seq order; live progress is not stored and carries the seq of the last stored
  // event when it was made, never a later one.
  const seqs = events.filter((e) => e.kind !== 'progress').map((e) => Number(e.seq));
  assert.deepEqual(seqs, seqs.slice().sort((a, b) => a - b));
  let stored = 0;
  for (const e of events) {
    if (e.kind === 'progress') assert.ok(Number(e.seq) <= stored, 'progress seq ' + e.seq + ' after ' + stored);
    else stored = Number(e.seq);
  }

  const dir = tmpdir('fetch');
  for (const d of done) {
    // Small chunks so the file really arrives in several pieces.
    let calls = 0;
    const r = await client.fetchFrame(job.id, d.frame, dir, {
      chunkSize: 64 * 1024,
      expectedSha256: d.sha256,
      onProgress: () => {
        calls += 1;
      },
    });
    assert.ok(calls >= 1);
    assert.equal(r.fileName, d.file_name); // the server's name, as FrameDone says
    assert.equal(r.size, Number(d.size_bytes));
    assert.equal(r.sha256, d.sha256);
    assert.equal(sha256(r.path), d.sha256);
    const serverFile = path.join(server.dataDir, 'jobs', job.id, r.fileName);
    assert.ok(fs.readFileSync(r.path).equals(fs.readFileSync(serverFile)), 'bytes equal the server file');
    assert.equal(fs.readFileSync(r.path, 'latin1').slice(0, 4), '\x76\x2f\x31\x01'); // OpenEXR magic
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), job.frame_infos.map((i) => i.file_name));
  assert.deepEqual(done.map((d) => d.file_name), ['aetest.1001.exr', 'aetest.1002.exr', 'aetest.1003.exr']);

  // A second watch replays the whole event log from seq 1.
  const replay = [];
  const w = client.watchJob(job.id, (ev) => replay.push(ev));
  await w.done;
  assert.deepEqual(replay.map((e) => Number(e.seq)), seqs);
  firstJob = job;
});

test('fetchFrame resumes a partial download and rejects a corrupted one', async () => {
  assert.ok(firstJob, 'needs the job of the generate test');
  const job = firstJob;
  const serverFile = path.join(server.dataDir, 'jobs', job.id, 'aetest.1001.exr');
  const bytes = fs.readFileSync(serverFile);
  const dir = tmpdir('resume');
  const part = path.join(dir, '.genfx-' + job.id + '-1001.part');
  fs.writeFileSync(part, bytes.subarray(0, 1000));
  const r = await client.fetchFrame(job.id, 1001, dir);
  assert.equal(r.resumedFrom, 1000);
  assert.ok(fs.readFileSync(r.path).equals(bytes));
  assert.ok(!fs.existsSync(part));

  // Wrong bytes in the part file: the hash check refuses the file and removes the part.
  const bad = Buffer.from(bytes.subarray(0, 1000));
  bad[10] ^= 0xff;
  fs.unlinkSync(r.path);
  fs.writeFileSync(part, bad);
  await assert.rejects(client.fetchFrame(job.id, 1001, dir), /sha256 mismatch/);
  assert.ok(!fs.existsSync(part) && !fs.existsSync(r.path));
  // A clean retry works.
  const again = await client.fetchFrame(job.id, 1001, dir);
  assert.equal(again.sha256, sha256(serverFile));
  await assert.rejects(client.fetchFrame(job.id, 999, dir), (e) => e.code === grpc.status.NOT_FOUND);
});

test('cancel stops a running job between denoising steps', async () => {
  const req = smallRequest({ frames: 40, steps: 25, seed: 3, name: 'cancelme' });
  let sawProgress;
  const started = new Promise((resolve) => {
    sawProgress = resolve;
  });
  const g = await client.generate(req, (ev) => {
    if (ev.kind === 'progress') sawProgress();
  });
  await started;
  const c = await client.cancelJob(g.job.id);
  assert.ok(['JOB_STATE_CANCELLED', 'JOB_STATE_RUNNING'].indexOf(c.state) >= 0);
  const job = await g.done;
  assert.equal(job.state, 'JOB_STATE_CANCELLED');
  assert.ok(job.frames.length < 40);
  const listed = await client.listJobs(['JOB_STATE_CANCELLED']);
  assert.ok(listed.some((j) => j.id === job.id));
});

test('listJobs follows page tokens; listed requests are abridged; deleteJob removes an ended job', async () => {
  const all = await client.listJobs([], 3);
  assert.ok(all.length >= 2, 'earlier tests made jobs');
  const paged = await client.listJobs([], 3, 1); // one job per ListJobs page
  assert.deepEqual(paged.map((j) => j.id), all.map((j) => j.id));
  assert.ok(all.every((j) => j.request_abridged && j.request.camera.samples.length === 0));
  const full = await client.getJob(all[0].id);
  assert.equal(full.request_abridged, false);
  assert.ok(full.request.camera.samples.length > 0);
  const ended = all.filter((j) => ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].indexOf(j.state) >= 0);
  const done = await client.deleteJob(ended[0].id);
  assert.equal(done.job_id, ended[0].id);
  await assert.rejects(client.getJob(ended[0].id), (e) => e.code === grpc.status.NOT_FOUND);
});

// ---------------------------------------------------------------------------------------------
// The panel flow: host script in the fake AE, real server.

test('panel flow: work area, camera per frame, generate, download beside the .aep, import as an AI layer', async () => {
  const { ae, comp, projectDir, host } = fakeAeProject();
  const logs = [];
  const panel = new PanelController({ host, log: (m) => logs.push(m), sampleChunk: 2 });
  const info = await panel.connect(server.address, TOKEN);
  assert.equal(info.models[0].name, 'tiny');
  const fractions = [];
  const frames = [];
  const r = await panel.generate(
    { prompt: 'concrete dust plume', seed: '5', steps: 2, model: 'tiny' },
    { onProgress: (f) => f !== null && fractions.push(f), onFrame: (x) => frames.push(x) }
  );
  // Work area of the comp: display frames 1003-1005; the moving camera gave one sample per frame.
  assert.equal(r.job.state, 'JOB_STATE_SUCCEEDED');
  assert.deepEqual(r.job.frame_infos.map((i) => i.frame), [1003, 1004, 1005]);
  const sent = r.job.request.camera.samples;
  assert.deepEqual(sent.map((s) => s.frame), [1003, 1004, 1005]);
  assert.ok(Math.abs(sent[1].camera_to_world[3] - sent[0].camera_to_world[3] - 0.03) < 1e-9); // 3 px = 0.03 units
  assert.equal(r.job.request.output.name, 'shot010_comp');
  assert.deepEqual(r.job.request.shot.fps, { numerator: '24', denominator: '1' });
  assert.match(r.job.request.client_tag, /^aftereffects:shot010\.aep\/shot010_comp$/);
  assert.ok(fractions.length >= 3 && fractions[fractions.length - 1] === 1);
  // Frames beside the .aep, verified against the server's files.
  assert.equal(r.dir, path.join(projectDir, 'genfx', r.job.id));
  assert.equal(frames.length, 3);
  for (const f of r.frames) {
    assert.ok(fs.readFileSync(f.path).equals(fs.readFileSync(path.join(server.dataDir, 'jobs', r.job.id, f.fileName))));
  }
  // Imported: sequence, above the plate, at display frame 1003 (2/24 s), named and commented.
  assert.equal(ae.log.imports.length, 1);
  assert.equal(ae.log.imports[0].sequence, true);
  assert.equal(ae.log.imports[0].file, path.join(r.dir, r.job.frame_infos[0].file_name));
  assert.equal(r.job.frame_infos[0].file_name, 'shot010_comp.1003.exr');
  const layer = comp.layer(r.imported.layerIndex);
  assert.equal(layer.name, 'AI \u00b7 concrete dust plume');
  assert.ok(Math.abs(layer.startTime - 2 / 24) < 1e-12);
  assert.ok(Math.abs(layer.outPoint - 5 / 24) < 1e-12);
  assert.equal(layer.source.mainSource.conformFrameRate, 24);
  assert.match(layer.comment, new RegExp('GenFX job ' + r.job.id));
  assert.match(layer.comment, /seed: 5 \| model: tiny/);
  assert.equal(comp.layer(r.imported.layerIndex + 1).name, 'plate');
  assert.ok(!comp._layers.some((l) => l.name === '__genfx_camera_eval__'));
  assert.ok(logs.some((m) => /Camera: 3 sample/.test(m)));
  panel.close();
});

test('panel: the job list shows a job launched from Houdini, and Import brings it in at the current time', async () => {
  // "Houdini" submits through its own client; the panel only sees it on the server.
  const houdini = smallRequest({ frames: 1, seed: 21, name: 'collapse', clientTag: 'houdini:/obj/collapse1', prompt: 'collapse' });
  const hjob = await (await client.generate(houdini, null)).done;
  assert.equal(hjob.state, 'JOB_STATE_SUCCEEDED');

  const { ae, comp, host } = fakeAeProject();
  const panel = new PanelController({ host });
  await panel.connect(server.address, TOKEN);
  const jobs = await panel.listJobs();
  const row = jobs.filter((j) => j.id === hjob.id)[0];
  assert.ok(row, 'the Houdini job is listed');
  assert.equal(row.clientTag, 'houdini:/obj/collapse1');
  assert.equal(row.importable, true);
  assert.equal(row.frames, '1001-1001');
  const outputRoot = tmpdir('import');
  const r = await panel.importJob(hjob.id, { placeAt: 'current', outputRoot: outputRoot });
  const layer = comp.layer(r.layerIndex);
  assert.equal(layer.name, 'AI \u00b7 collapse');
  assert.ok(Math.abs(layer.startTime - 10 / 24) < 1e-12); // comp.time = frame 1011 -> 10/24 s
  assert.deepEqual(fs.readdirSync(path.join(outputRoot, hjob.id)).sort(), hjob.frame_infos.map((i) => i.file_name));
  assert.deepEqual(hjob.frame_infos.map((i) => i.file_name), ['collapse.1001.exr']);
  assert.equal(ae.log.imports.length, 1);
  // Cancel with nothing running is a clear error, not a crash.
  await assert.rejects(panel.cancel(), /No job is running/);

  // Import again: the verified frames on disk are used as they are, nothing is fetched or renamed
  // (on Windows a file After Effects holds open cannot be replaced: renaming onto it fails).
  const fetched = [];
  const realFetchFrame = panel.client.fetchFrame.bind(panel.client);
  panel.client.fetchFrame = (...a) => realFetchFrame(...a).then((x) => (fetched.push(x), x));
  const realRename = fs.renameSync;
  fs.renameSync = (from, to) => {
    if (fs.existsSync(to)) throw Object.assign(new Error('EPERM: operation not permitted, rename'), { code: 'EPERM' });
    return realRename(from, to);
  };
  try {
    const again = await panel.importJob(hjob.id, { placeAt: 'current', outputRoot: outputRoot });
    assert.ok(again.layerIndex >= 1);
    assert.deepEqual(fetched.map((x) => x.alreadyThere), [true]);
    assert.equal(ae.log.imports.length, 2);
  } finally {
    fs.renameSync = realRename;
  }
  panel.close();
});

test('the frames colour space reaches the request; under OCIO the import says what to set', async () => {
  const { host } = fakeAeProject();
  const panel = new PanelController({ host });
  await panel.connect(server.address, TOKEN);
  const r = await panel.generate(
    { prompt: 'dust', seed: '3', steps: 1, model: 'tiny', frameStart: 1003, frameEnd: 1003, colorspace: 'acescg', colourEngine: 'ocio' },
    {}
  );
  assert.equal(r.job.request.output.colorspace, 'COLOR_SPACE_ACESCG');
  assert.ok(r.imported.warnings.some((w) => /Media Color Space to "ACEScg"/.test(w)), r.imported.warnings.join('\n'));
  assert.ok(!r.imported.warnings.some((w) => /lineari/.test(w)));
  panel.close();
});

test('the panel page itself (client/panel.js on a fake DOM): connect, models, work area, Generate, job list, Import', async () => {
  const { createPage, waitFor } = require('./mock/fake_dom');
  const { ae, comp } = fakeAeProject();
  const page = createPage({
    root: ROOT,
    evalScript: (script) => ae.evalScript(script),
    localStorage: { 'genfx.settings.v1': JSON.stringify({ address: server.address, token: TOKEN, label: 4 }) },
  });
  const $ = page.byId;
  // Start-up: host loaded, comp read, connected with the saved settings.
  await waitFor(() => /^GenFX /.test($['server-status'].textContent), 60000, 'connection');
  assert.equal($['server-status'].className, 'ok');
  assert.ok($['model'].children.some((o) => o.value === 'tiny'));
  // Empty fields are left to the server; their placeholders show the server's own defaults.
  const defaults = (await client.getServerInfo()).defaults;
  assert.ok(defaults.steps > 0 && defaults.keyframe_step > 0);
  assert.equal($['steps'].placeholder, String(defaults.steps));
  assert.equal($['keyframe-step'].placeholder, String(defaults.keyframe_step));
  await waitFor(() => /shot010_comp/.test($['comp-summary'].textContent), 10000, 'comp summary');
  assert.match($['comp-summary'].textContent, /64\u00d764, 24 fps, work area 1003-1005, camera: Camera 1/);
  assert.equal(String($['frame-start'].value), '1003');
  assert.equal(String($['frame-end'].value), '1005');
  assert.equal($['label-colour'].value, '4');
  assert.deepEqual($['comp-warnings'].children, []);

  // Generate two frames from the form.
  $['prompt'].value = 'panel made this';
  $['seed'].value = '9';
  $['steps'].value = '1';
  $['model'].value = 'tiny';
  $['frame-end'].value = '1004';
  $['frame-end'].dispatch('input');
  $['go'].click();
  assert.equal($['go'].disabled, true);
  await waitFor(() => /^Done: /.test($['progress-text'].textContent), 120000, 'generate');
  await waitFor(() => !$['go'].disabled, 10000, 'buttons back');
  assert.equal($['progress'].value, 1);
  const layer = comp._layers.filter((l) => l.name === 'AI \u00b7 panel made this')[0];
  assert.ok(layer, 'layer imported');
  assert.equal(layer.label, 4);
  assert.ok(Math.abs(layer.outPoint - layer.inPoint - 2 / 24) < 1e-12);
  const saved = JSON.parse(page.store.get('genfx.settings.v1'));
  assert.equal(saved.address, server.address);

  // The job list has it, with an Import button; importing again at the current time adds a layer.
  await waitFor(() => $['job-rows'].children.length > 0 && /panel made this/.test($['job-rows'].textContent), 10000, 'job list');
  const row = $['job-rows'].children.filter((r) => /panel made this/.test(r.textContent))[0];
  const button = row.find((e) => e.tagName === 'BUTTON' && e.textContent === 'Import');
  $['place-at'].value = 'current';
  const before = comp.numLayers;
  button.click();
  await waitFor(() => comp.numLayers === before + 1, 30000, 'import');
  const starts = comp._layers.filter((l) => l.name === 'AI \u00b7 panel made this').map((l) => Math.round(l.startTime * 24));
  assert.deepEqual(starts.sort((a, b) => a - b), [2, 10]); // the job's frame 1003, then the current time (frame 1011)
  assert.equal(ae.log.imports.length, 2);
  assert.ok(!/error/.test($['log'].children.map((c) => c.className).join(' ')), $['log'].textContent);
});
