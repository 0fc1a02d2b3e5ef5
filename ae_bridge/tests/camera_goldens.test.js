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
  const pa = c.comp.pixel_aspect;
  if (c.camera.default) return C.aeDefaultCamera(w, h, pa).matrix;
  // Positions are comp coordinates; the camera lives in AE's square-pixel world.
  const sq = (p) => (p ? C.compToSquare(p, pa) : null);
  let m = C.aeCameraToWorld(sq(c.camera.position), sq(c.camera.point_of_interest), c.camera.orientation, c.camera.rotation);
  if (c.parent) {
    const p = C.aeCameraToWorld(sq(c.parent.position), null, c.parent.orientation, c.parent.rotation);
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
      close(C.aePointToWorld(p.ae, w, h, c.units_per_pixel, c.comp.pixel_aspect), p.world, 'world');
      close(C.projectToPixel(sample, w, h, p.world), p.pixel, `pixel of ${p.ae}`);
      // Through the golden's own wire sample too (what the server receives).
      close(C.projectToPixel(e, w, h, p.world), p.pixel, `pixel (golden sample) of ${p.ae}`);
      close(C.aeProject(mAe, c.zoom, w, h, p.ae, c.comp.pixel_aspect), p.ae_pixel, `AE pixel of ${p.ae}`);
    }
  });
}

test('toWorld samples rebuild the golden AE matrices (what the host script samples)', () => {
  for (const c of golden.cases) {
    const m = c.expected.camera_to_world_ae;
    const pa = c.comp.pixel_aspect;
    // toWorld answers in comp coordinates: x in the comp's pixels (square-pixel x / pixel aspect).
    const toWorld = (mat, p) => {
      const q = C.transformPoint(mat, p);
      return [q[0] / pa, q[1], q[2]];
    };
    // A parent scaled 250 % scales toWorld offsets; the axes are normalised back.
    const s = 2.5;
    const scaled = m.slice();
    for (const i of [0, 1, 2, 4, 5, 6, 8, 9, 10]) scaled[i] *= s;
    for (const mat of [m, scaled]) {
      const rebuilt = C.matrixFromToWorld(
        toWorld(mat, [0, 0, 0]),
        toWorld(mat, [1, 0, 0]),
        toWorld(mat, [0, 1, 0]),
        toWorld(mat, [0, 0, 1]),
        pa
      );
      close(rebuilt, m, c.name + ' rebuilt');
    }
  }
});

test('default camera is the 50 mm preset and maps the comp plane onto itself, any pixel aspect', () => {
  for (const pa of [1, 0.9, 2]) {
    const d = C.aeDefaultCamera(1920, 1080, pa);
    close(d.zoom, 1920 * pa * 50 / 36, 'zoom'); // thisComp.width * thisComp.pixelAspect, as Adobe's example
    close(C.zoomToFocalMm(d.zoom, 1920, 36, pa), 50, 'focal');
    close(C.aeProject(d.matrix, d.zoom, 1920, 1080, [100, 200, 0], pa), [100, 200], 'z=0 point');
    const s = C.fromAfterEffects(d.matrix, { frame: 1, zoom: d.zoom, compWidth: 1920, compHeight: 1080, pixelAspect: pa });
    close(C.projectToPixel(s, 1920, 1080, C.aePointToWorld([1700, 900, 0], 1920, 1080, 0.01, pa)), [1700, 900], 'wire');
  }
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
