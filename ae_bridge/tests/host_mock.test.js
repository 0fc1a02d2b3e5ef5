'use strict';
// The ExtendScript host (host/index.jsx + host/genfx_host.jsx, with the shared ES3 modules) run in
// Node against the fake AE DOM of tests/mock/ae_dom.js. What this proves and what it cannot: see
// README.md, "What was exercised against a mock".
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createAe } = require('./mock/ae_dom');
const es3 = require('../node/es3');
const { buildHostCall, makeHost } = require('../node/host_bridge');

const ROOT = path.resolve(__dirname, '..');
const GOLDEN = JSON.parse(
  fs.readFileSync(path.resolve(ROOT, '..', 'tests', 'golden', 'camera_projections.json'), 'utf8')
);
const C = es3.camera();

/** A fake AE with the host loaded the way the panel loads it (ScriptPath, then genfxLoad). */
function loadedAe() {
  const ae = createAe();
  ae.context.$.evalFile(path.join(ROOT, 'host', 'index.jsx'));
  const loaded = JSON.parse(ae.evalScript('genfxLoad(' + JSON.stringify(ROOT) + ')'));
  assert.deepEqual(loaded, { ok: true, value: 'loaded' });
  return ae;
}

/** GenfxHost.call with the very script text the panel sends through evalScript. */
function call(ae, name, args) {
  return JSON.parse(ae.evalScript(buildHostCall(name, args || {})));
}

function ok(ae, name, args) {
  const r = call(ae, name, args);
  assert.equal(r.ok, true, 'host error: ' + r.error);
  return r.value;
}

function close(actual, expected, what, tol) {
  const t = tol === undefined ? 1e-6 : tol;
  if (Array.isArray(expected)) {
    assert.equal(actual.length, expected.length, what);
    expected.forEach((v, i) => close(actual[i], v, what + '[' + i + ']', t));
    return;
  }
  assert.ok(Math.abs(actual - expected) <= t, `${what}: ${actual} != ${expected}`);
}

function tmpSequence(name, first, count) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genfx-ae-host-'));
  for (let f = first; f < first + count; f++) {
    fs.writeFileSync(path.join(dir, name + '.' + String(f).padStart(4, '0') + '.exr'), 'not really an exr ' + f);
  }
  return dir;
}

test('the loader evaluates json, camera, request and host scripts from the extension folder', () => {
  const ae = loadedAe();
  assert.deepEqual(
    ae.log.evalFiles.map((p) => path.relative(ROOT, p)),
    ['host/index.jsx', 'host/lib/json.js', 'shared/camera.js', 'shared/request.js', 'host/genfx_host.jsx']
  );
  assert.equal(ok(ae, 'ping'), 'pong');
  const bad = createAe();
  bad.context.$.evalFile(path.join(ROOT, 'host', 'index.jsx'));
  const r = JSON.parse(bad.evalScript('genfxLoad("/nonexistent")'));
  assert.equal(r.ok, false);
  assert.match(r.error, /missing host\/lib\/json\.js/);
});

test('errors come back as an envelope, never as an exception', () => {
  const ae = loadedAe();
  const r = call(ae, 'compInfo');
  assert.equal(r.ok, false);
  assert.match(r.error, /Open a composition/);
  assert.match(call(ae, 'noSuchThing').error, /no function noSuchThing/);
});

test('compInfo reads size, pixel aspect, rate, work area and warns when not 32 bpc linear', () => {
  const ae = loadedAe();
  const comp = ae.addComp({
    name: 'shot010',
    width: 1920,
    height: 1080,
    frameRate: 24,
    duration: 5,
    displayStartFrame: 1001,
    workAreaStart: 0.5,
    workAreaDuration: 2,
    time: 1,
  });
  comp.layers._addSolid('plate').selected = true;
  ae.project._file = new ae.classes.File('/projects/show/shot010.aep');
  const info = ok(ae, 'compInfo');
  assert.equal(info.width, 1920);
  assert.equal(info.height, 1080);
  assert.equal(info.pixelAspect, 1);
  assert.equal(info.frameRate, 24);
  assert.deepEqual(info.workArea, { start: 1013, end: 1060 }); // 0.5 s = 12 frames, 2 s = 48 frames
  assert.equal(info.firstFrame, 1001);
  assert.equal(info.lastFrame, 1120);
  assert.equal(info.currentFrame, 1025);
  assert.equal(info.hasCamera, false);
  assert.deepEqual(info.selectedLayer, { index: 1, name: 'plate' });
  assert.equal(info.project.folder, path.resolve('/projects/show'));
  assert.equal(info.warnings.length, 2);
  assert.match(info.warnings[0], /8 bpc/);
  assert.match(info.warnings[1], /linear/);

  ae.project.bitsPerChannel = 32;
  ae.project.workingSpace = 'sRGB IEC61966-2.1';
  assert.equal(ok(ae, 'compInfo').warnings.length, 1);
  assert.match(ok(ae, 'compInfo').warnings[0], /not linearized/);
  ae.project.linearizeWorkingSpace = true;
  assert.deepEqual(ok(ae, 'compInfo').warnings, []);
});

for (const g of GOLDEN.cases) {
  test(`sampleCamera through toWorld reproduces the golden wire camera: ${g.name}`, () => {
    const ae = loadedAe();
    const comp = ae.addComp({ width: g.comp.width, height: g.comp.height, pixelAspect: g.comp.pixel_aspect, displayStartFrame: 1001 });
    const plate = comp.layers._addSolid('plate');
    plate.selected = true;
    comp.layers._addCamera('Camera 1', () => g.expected.camera_to_world_ae, () => g.zoom);
    const before = comp.numLayers;
    const r = ok(ae, 'sampleCamera', { frameStart: 1001, frameEnd: 1003 });
    assert.equal(r.isDefault, false);
    assert.equal(r.isStatic, true);
    assert.equal(r.camera.samples.length, 1); // a locked-off camera is sent as one sample
    assert.equal(r.ae.length, 3);
    const s = r.camera.samples[0];
    const e = g.expected.sample;
    close(s.camera_to_world, e.camera_to_world, 'camera_to_world');
    for (const k of ['focal_length_mm', 'horizontal_aperture_mm', 'vertical_aperture_mm', 'pixel_aspect', 'near_clip', 'far_clip']) {
      close(s[k], e[k], k);
    }
    for (const p of g.points) close(C.projectToPixel(s, g.comp.width, g.comp.height, p.world), p.pixel, 'pixel');
    assert.deepEqual([r.camera.width, r.camera.height], [g.comp.width, g.comp.height]);
    // The temporary null is gone, the selection is back, the undo group closed.
    assert.equal(comp.numLayers, before);
    assert.deepEqual(ae.log.removed, ['__genfx_camera_eval__']);
    assert.deepEqual(Array.from(comp.selectedLayers, (l) => l.name), ['plate']);
    assert.equal(ae.undoDepth(), 0);
  });
}

test('sampleCamera follows an animated, parented camera and camera cuts frame by frame', () => {
  const ae = loadedAe();
  const comp = ae.addComp({ width: 1920, height: 1080, frameRate: 24, duration: 2, displayStartFrame: 0 });
  // Camera A (frames 0-5): a two-node camera whose parent null turns 2 degrees a frame.
  const worldA = (t) => {
    const frame = Math.round(t * 24);
    const parent = C.aeCameraToWorld([960, 540, 0], null, [0, 0, 0], [0, 2 * frame, 0]);
    return C.mul4(parent, C.aeCameraToWorld([0, -50, -1800], [0, 0, 0], [0, 0, 0], [0, 0, 0]));
  };
  comp.layers._addCamera('A', worldA, (t) => 1500 + 10 * Math.round(t * 24), 0, 6 / 24);
  // Camera B takes over at frame 6 (a cut).
  const worldB = () => C.aeCameraToWorld([100, 200, -900], [960, 540, 0]);
  comp.layers._addCamera('B', worldB, () => 900, 6 / 24, 2);
  const r = ok(ae, 'sampleCamera', { frameStart: 3, frameEnd: 8 });
  assert.equal(r.isStatic, false);
  assert.deepEqual(r.camera.samples.map((s) => s.frame), [3, 4, 5, 6, 7, 8]);
  for (const a of r.ae) {
    const expected = a.frame < 6 ? worldA(a.frame / 24) : worldB();
    close(a.matrix, expected, 'frame ' + a.frame);
    assert.equal(a.zoom, a.frame < 6 ? 1500 + 10 * a.frame : 900);
  }
  for (const s of r.camera.samples) {
    const a = r.ae.filter((x) => x.frame === s.frame)[0];
    const expected = C.fromAfterEffects(a.matrix, { frame: s.frame, zoom: a.zoom, compWidth: 1920, compHeight: 1080 });
    close(s.camera_to_world, expected.camera_to_world, 'wire ' + s.frame);
    close(s.focal_length_mm, a.zoom * 36 / 1920, 'focal ' + s.frame);
  }
  // The camera was read through expressions on the active camera, with toWorld.
  assert.ok(ae.log.expressions.some((x) => /thisComp\.activeCamera/.test(x) && /toWorld\(\[1, 0, 0\]\)/.test(x)));
  assert.ok(ae.log.expressions.some((x) => /activeCamera\.zoom/.test(x)));
});

test('frames without an active camera use the default camera, even with the current time on one', () => {
  const ae = loadedAe();
  // The current time (frame 0) has no camera: AE evaluates an expression when it is set, right there.
  const comp = ae.addComp({ width: 640, height: 480, frameRate: 24, duration: 2, time: 0 });
  const late = C.aeCameraToWorld([100, 200, -900], [320, 240, 0]);
  comp.layers._addCamera('late', () => late, () => 888, 10 / 24, 2);
  const r = ok(ae, 'sampleCamera', { frameStart: 8, frameEnd: 12 });
  const d = C.aeDefaultCamera(640, 480);
  assert.deepEqual(r.ae.map((a) => a.isDefault), [true, true, false, false, false]);
  close(r.ae[0].matrix, d.matrix, 'frame 8: default camera');
  close(r.ae[0].zoom, d.zoom, 'frame 8: default zoom');
  close(r.ae[2].matrix, late, 'frame 10: the camera');
  assert.equal(r.ae[2].zoom, 888);
  assert.equal(r.defaultFrames, 2);
  assert.equal(comp.numLayers, 1);
  assert.equal(ae.undoDepth(), 0);
});

test('one carrier, one undo group, no project item for a 240-frame shot', () => {
  const ae = loadedAe();
  const comp = ae.addComp({ width: 1920, height: 1080, frameRate: 24, duration: 12, displayStartFrame: 1001 });
  comp.layers._addCamera('shot', (t) => C.aeCameraToWorld([960 + 10 * t, 540, -2000], null), () => 1800);
  const items = ae.project.items.length;
  const { PanelController } = require('../node/panel_controller');
  const controller = new PanelController({ host: makeHost((script, cb) => cb(ae.evalScript(script))) });
  return controller.sampleCamera(1001, 1240).then((cam) => {
    assert.equal(cam.track.samples.length, 240);
    assert.equal(ae.log.undoGroups, 1, 'one entry in Edit > Undo');
    assert.equal(ae.project.items.length, items, 'no solid left in the project');
    assert.deepEqual(ae.itemsOf(ae.classes.FootageItem), []);
    assert.equal(comp.numLayers, 1);
  });
});

test('a locked layer in the selection neither breaks sampling nor leaves the undo group open', () => {
  const ae = loadedAe();
  const comp = ae.addComp({ width: 640, height: 480, frameRate: 24, duration: 2 });
  comp.layers._addCamera('cam', () => C.aeCameraToWorld([320, 240, -800], [320, 240, 0]), () => 800);
  const plate = comp.layers._addSolid('plate');
  plate.selected = true;
  plate.locked = true; // selected, then locked: it refuses any selection change now
  const r = call(ae, 'sampleCamera', { frameStart: 0, frameEnd: 2 });
  assert.equal(r.ok, true, r.error);
  assert.equal(ae.undoDepth(), 0);
  assert.equal(comp.numLayers, 2);
});

test('disabled cameras do not count: AE renders such a comp with its default camera', () => {
  const ae = loadedAe();
  const comp = ae.addComp({ width: 640, height: 480, frameRate: 24, duration: 2 });
  comp.layers._addCamera('off', () => C.aeCameraToWorld([0, 0, -100], null), () => 100).enabled = false;
  const r = ok(ae, 'sampleCamera', { frameStart: 0, frameEnd: 5 });
  assert.equal(r.isDefault, true);
  assert.deepEqual(ae.log.expressions, []);
  close(r.camera.samples[0].focal_length_mm, 50, 'focal');
});

test('non-square pixels: the default camera spans width x pixel aspect (50 mm), sent with the pixel aspect', () => {
  const ae = loadedAe();
  ae.addComp({ width: 720, height: 486, pixelAspect: 0.9 });
  const r = ok(ae, 'sampleCamera', { frameStart: 0, frameEnd: 0 });
  const s = r.camera.samples[0];
  close(r.ae[0].zoom, (720 * 0.9 * 50) / 36, 'zoom: thisComp.width * thisComp.pixelAspect');
  close(s.focal_length_mm, 50, 'focal');
  assert.equal(s.pixel_aspect, 0.9);
  // A point on the comp plane stays where it is (AE's default camera shows the comp as in 2D).
  close(C.projectToPixel(s, 720, 486, C.aePointToWorld([700, 20, 0], 720, 486, 0.01, 0.9)), [700, 20], 'pixel');
});

test('no camera: AE default 50 mm camera, one static sample, no null added', () => {
  const ae = loadedAe();
  ae.addComp({ width: 1920, height: 1080 });
  const r = ok(ae, 'sampleCamera', { frameStart: 0, frameEnd: 47 });
  assert.equal(r.isDefault, true);
  assert.equal(r.camera.samples.length, 1);
  close(r.camera.samples[0].focal_length_mm, 50, 'focal');
  close(r.ae[0].zoom, (1920 * 50) / 36, 'zoom');
  assert.deepEqual(ae.log.removed, []);
  assert.deepEqual(ae.log.expressions, []);
});

test('the fake has types-for-adobe\'s surface and ExtendScript\'s ES3 built-ins', () => {
  const ae = loadedAe();
  ae.addComp({ width: 64, height: 64 });
  assert.throws(() => ae.evalScript('app.project.activeItem.numLayers = 3'), /read-only/);
  assert.throws(() => ae.evalScript('app.project.activeItem.layers.addNulll()'), /not in types-for-adobe/);
  assert.equal(ae.evalScript('typeof JSON + " " + typeof [].forEach + " " + typeof "".trim + " " + typeof Object.keys'), 'undefined undefined undefined undefined');
  assert.equal(ae.evalScript('AlphaMode.PREMULTIPLIED + " " + ImportAsType.FOOTAGE'), '5414 3813'); // the typings' values
  ok(ae, 'sampleCamera', { frameStart: 0, frameEnd: 0 });
  assert.ok(ae.log.touched.has('CompItem.pixelAspect'));
});

test('sampleCamera refuses frames outside the comp', () => {
  const ae = loadedAe();
  ae.addComp({ width: 100, height: 100, duration: 1, frameRate: 24, displayStartFrame: 1001 });
  assert.match(call(ae, 'sampleCamera', { frameStart: 1000, frameEnd: 1002 }).error, /outside the comp \(1001-1024\)/);
});

test('importSequence: sequence import, conformed rate, premultiplied, above the selection, right start, name, label, comment', () => {
  const ae = loadedAe();
  const comp = ae.addComp({ name: 'shot010', width: 1920, height: 1080, frameRate: 24, duration: 10, displayStartFrame: 1000 });
  comp.layers._addSolid('plate');
  comp.layers._addSolid('grade').selected = false;
  // stack: 1 grade, 2 plate; select the plate
  comp.layer(2).selected = true;
  const dir = tmpSequence('shot010', 1001, 3);
  const first = path.join(dir, 'shot010.1001.exr');
  const r = ok(ae, 'importSequence', {
    firstFile: first,
    frameStart: 1001,
    frameEnd: 1003,
    prompt: 'dusty concrete\ncollapse,   golden hour',
    jobId: '0123456789abcdef0123456789abcdef',
    seed: '42',
    model: 'tiny',
    modelHash: 'f9ae1a943fbfa1a0f85bd376',
    server: '127.0.0.1:50051',
  });
  // importFile got a sequence
  assert.equal(ae.log.imports.length, 1);
  assert.deepEqual(ae.log.imports[0], { file: path.resolve(first), sequence: true, forceAlphabetical: false, importAs: ae.ImportAsType.FOOTAGE });
  const layer = comp.layer(r.layerIndex);
  const item = layer.source;
  assert.ok(item instanceof ae.classes.FootageItem);
  assert.equal(r.itemId, item.id);
  assert.equal(item._frames, 3);
  assert.equal(item.mainSource.conformFrameRate, 24);
  assert.equal(item.mainSource.alphaMode, ae.AlphaMode.PREMULTIPLIED);
  assert.equal(item.parentFolder.name, 'GenFX');
  // layers.add with that item, placed directly above the selected plate
  assert.equal(ae.log.adds.length, 1);
  assert.equal(ae.log.adds[0].item, item);
  assert.equal(r.layerIndex, 2);
  assert.deepEqual(comp._layers.map((l) => l.name), ['grade', r.layerName, 'plate']);
  // time-aligned: display frame 1001 in a comp that starts at 1000 is 1/24 s in
  close(layer.startTime, 1 / 24, 'startTime', 1e-12);
  close(r.inPoint, 1 / 24, 'inPoint', 1e-12);
  close(r.outPoint, 4 / 24, 'outPoint', 1e-12); // 3 frames at the conformed 24 fps
  assert.equal(layer.name, 'AI \u00b7 dusty concrete collapse, golden hour');
  assert.equal(layer.label, 10);
  assert.match(layer.comment, /GenFX job 0123456789abcdef0123456789abcdef/);
  assert.match(layer.comment, /seed: 42/);
  assert.match(layer.comment, /model: tiny \(f9ae1a943fbf\)/);
  assert.match(layer.comment, /frames: 1001-1003/);
  assert.equal(item.comment, layer.comment);
  assert.equal(ae.undoDepth(), 0);
  // 8 bpc, not linear: the result carries the warnings for the panel to show
  assert.equal(r.warnings.length, 2);
});

test('importSequence at another frame (e.g. the current time), on top when nothing is selected', () => {
  const ae = loadedAe();
  const comp = ae.addComp({ width: 64, height: 64, frameRate: 25, duration: 100 });
  comp.layers._addSolid('plate');
  ae.project.bitsPerChannel = 32;
  ae.project.linearBlending = true;
  const dir = tmpSequence('genfx', 1001, 2);
  const r = ok(ae, 'importSequence', {
    firstFile: path.join(dir, 'genfx.1001.exr'),
    frameStart: 1001,
    frameEnd: 1002,
    placeAtFrame: 50,
    prompt: 'x'.repeat(100),
    jobId: 'j',
    seed: '1',
    model: 'tiny',
    label: 3,
  });
  assert.equal(r.layerIndex, 1);
  close(r.startTime, 2, 'startTime', 1e-12);
  close(r.outPoint - r.inPoint, 2 / 25, 'duration', 1e-12);
  assert.equal(comp.layer(1).label, 3);
  assert.equal(comp.layer(1).name.length, 'AI \u00b7 '.length + 60);
  assert.ok(comp.layer(1).name.endsWith('\u2026'));
  assert.deepEqual(r.warnings, []);
});

test('importSequence reports a missing first frame without touching the project', () => {
  const ae = loadedAe();
  ae.addComp({ width: 64, height: 64 });
  const r = call(ae, 'importSequence', { firstFile: '/nonexistent/genfx.1001.exr', frameStart: 1001, prompt: 'p', jobId: 'j' });
  assert.equal(r.ok, false);
  assert.match(r.error, /Missing first frame/);
  assert.equal(ae.log.imports.length, 0);
});

test('a one-frame job imports as a still: no frame rate to conform, a one-frame layer', () => {
  const ae = loadedAe();
  const comp = ae.addComp({ width: 64, height: 64, frameRate: 25, duration: 10, displayStartFrame: 1000 });
  const dir = tmpSequence('genfx', 1001, 1);
  const r = ok(ae, 'importSequence', { firstFile: path.join(dir, 'genfx.1001.exr'), frameStart: 1001, frameEnd: 1001, prompt: 'p', jobId: 'j', seed: '1', model: 'tiny' });
  assert.equal(r.isStill, true);
  const layer = comp.layer(r.layerIndex);
  close(layer.inPoint, 1 / 25, 'inPoint', 1e-12);
  close(layer.outPoint, 2 / 25, 'outPoint: one frame', 1e-12);
  assert.equal(ae.undoDepth(), 0);
});

test('frames without alpha keep their alpha mode; the footage gets the comp\'s pixel aspect', () => {
  const ae = createAe({ footageHasAlpha: false });
  ae.context.$.evalFile(path.join(ROOT, 'host', 'index.jsx'));
  ae.evalScript('genfxLoad(' + JSON.stringify(ROOT) + ')');
  const comp = ae.addComp({ width: 720, height: 486, pixelAspect: 0.9, frameRate: 24, duration: 10 });
  const dir = tmpSequence('genfx', 1, 3);
  const r = ok(ae, 'importSequence', { firstFile: path.join(dir, 'genfx.0001.exr'), frameStart: 1, frameEnd: 3, prompt: 'p', jobId: 'j', seed: '1', model: 'tiny' });
  const item = comp.layer(r.layerIndex).source;
  assert.equal(item.mainSource.alphaMode, ae.AlphaMode.IGNORE);
  assert.equal(item.pixelAspect, 0.9);
  assert.equal(item.mainSource.conformFrameRate, 24);
});

test('under OCIO the warnings say what to set in Interpret Footage, not to linearize', () => {
  const ae = loadedAe();
  ae.addComp({ width: 64, height: 64 });
  ae.project.bitsPerChannel = 32;
  const adobe = ok(ae, 'compInfo', {}).warnings;
  assert.equal(adobe.length, 1);
  assert.match(adobe[0], /linear/);
  const ocio = ok(ae, 'compInfo', { colour: { engine: 'ocio', space: 'acescg' } }).warnings;
  assert.equal(ocio.length, 1);
  assert.match(ocio[0], /Interpret Footage > Color > Media Color Space/);
  assert.match(ocio[0], /"ACEScg"/);
});
