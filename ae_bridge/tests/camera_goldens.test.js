'use strict';
// The ES3 camera module (shared/camera.js) reproduces the golden projections made by the Python SDK
// (tests/golden/camera_projections.json at the repo root, written by tests/test_camera_goldens.py).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const es3 = require('../node/es3');

const GOLDEN = path.resolve(__dirname, '..', '..', 'tests', 'golden', 'camera_projections.json');
const golden = JSON.parse(fs.readFileSync(GOLDEN, 'utf8'));
const C = es3.camera();
const TOL = 1e-6;

function close(actual, expected, what, tol) {
  const t = tol === undefined ? TOL : tol;
  if (Array.isArray(expected)) {
    assert.equal(actual.length, expected.length, what + ': length');
    expected.forEach((v, i) => close(actual[i], v, what + '[' + i + ']', t));
    return;
  }
  assert.ok(Math.abs(actual - expected) <= t, `${what}: ${actual} != ${expected} (tol ${t})`);
}

function aeWorld(c) {
  const w = c.comp.width;
  const h = c.comp.height;
  if (c.camera.default) return C.aeDefaultCamera(w, h).matrix;
  let m = C.aeCameraToWorld(c.camera.position, c.camera.point_of_interest, c.camera.orientation, c.camera.rotation);
  if (c.parent) {
    const p = C.aeCameraToWorld(c.parent.position, null, c.parent.orientation, c.parent.rotation);
    m = C.mul4(p, m);
  }
  return m;
}

test('the golden file has the cases the Python test writes', () => {
  assert.ok(golden.cases.length >= 5);
  assert.equal(golden.tolerance, 1e-6);
});

for (const c of golden.cases) {
  test(`golden ${c.name}: AE matrix, wire sample and pixels match the Python SDK`, () => {
    const w = c.comp.width;
    const h = c.comp.height;
    const mAe = aeWorld(c);
    close(mAe, c.expected.camera_to_world_ae, 'camera_to_world_ae');

    const sample = C.fromAfterEffects(mAe, {
      frame: c.frame,
      zoom: c.zoom,
      compWidth: w,
      compHeight: h,
      pixelAspect: c.comp.pixel_aspect,
      unitsPerPixel: c.units_per_pixel,
    });
    const e = c.expected.sample;
    assert.equal(sample.frame, e.frame);
    close(sample.camera_to_world, e.camera_to_world, 'camera_to_world');
    for (const k of ['focal_length_mm', 'horizontal_aperture_mm', 'vertical_aperture_mm', 'pixel_aspect', 'near_clip', 'far_clip']) {
      close(sample[k], e[k], k);
    }

    for (const p of c.points) {
      close(C.aePointToWorld(p.ae, w, h, c.units_per_pixel), p.world, 'world');
      close(C.projectToPixel(sample, w, h, p.world), p.pixel, `pixel of ${p.ae}`);
      // Through the golden's own wire sample too (what the server receives).
      close(C.projectToPixel(e, w, h, p.world), p.pixel, `pixel (golden sample) of ${p.ae}`);
      if (p.ae_pixel) close(C.aeProject(mAe, c.zoom, w, h, p.ae), p.ae_pixel, `AE pixel of ${p.ae}`);
    }
  });
}

test('toWorld samples rebuild the golden AE matrices (what the host script samples)', () => {
  for (const c of golden.cases) {
    const m = c.expected.camera_to_world_ae;
    const o = C.transformPoint(m, [0, 0, 0]);
    // A parent scaled 250 % scales toWorld offsets; the axes are normalised back.
    const s = 2.5;
    const scaled = m.slice();
    for (const i of [0, 1, 2, 4, 5, 6, 8, 9, 10]) scaled[i] *= s;
    for (const mat of [m, scaled]) {
      const rebuilt = C.matrixFromToWorld(
        o,
        C.transformPoint(mat, [1, 0, 0]),
        C.transformPoint(mat, [0, 1, 0]),
        C.transformPoint(mat, [0, 0, 1])
      );
      close(rebuilt, m, c.name + ' rebuilt');
    }
  }
});

test('default camera is the 50 mm preset and maps the comp plane onto itself', () => {
  const d = C.aeDefaultCamera(1920, 1080);
  close(d.zoom, 1920 * 50 / 36, 'zoom');
  close(C.zoomToFocalMm(d.zoom, 1920), 50, 'focal');
  close(C.aeProject(d.matrix, d.zoom, 1920, 1080, [100, 200, 0]), [100, 200], 'z=0 point');
});

test('bad input names the field', () => {
  assert.throws(() => C.aeCameraToWorld([0, 0, 0], [0, -100, 0]), /point_of_interest/);
  assert.throws(() => C.fromAfterEffects([1, 2, 3], { frame: 1, zoom: 1, compWidth: 1, compHeight: 1 }), /camera_to_world_ae/);
  const m = C.aeDefaultCamera(100, 100).matrix;
  assert.throws(() => C.fromAfterEffects(m, { frame: 1, zoom: 0, compWidth: 100, compHeight: 100 }), /zoom/);
  assert.throws(() => C.invert4([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), /singular/);
  assert.throws(() => C.matrixFromToWorld([0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 1]), /zero length/);
});

test('isStatic tells a locked-off camera from a moving one', () => {
  const m = C.aeDefaultCamera(640, 480).matrix;
  const a = C.fromAfterEffects(m, { frame: 1, zoom: 800, compWidth: 640, compHeight: 480 });
  const b = C.fromAfterEffects(m, { frame: 2, zoom: 800, compWidth: 640, compHeight: 480 });
  assert.equal(C.isStatic([a, b]), true);
  const moved = m.slice();
  moved[3] += 1;
  const c = C.fromAfterEffects(moved, { frame: 3, zoom: 800, compWidth: 640, compHeight: 480 });
  assert.equal(C.isStatic([a, b, c]), false);
  assert.equal(C.isStatic([a]), true);
});
