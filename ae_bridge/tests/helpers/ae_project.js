'use strict';
// A saved AE project in the fake AE DOM with the GenFX host script loaded: a 64x64, 24 fps comp whose
// work area is display frames 1003-1005, a plate, and a camera trucking 3 px a frame.
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { makeHost } = require('../../node/host_bridge');
const { createAe } = require('../mock/ae_dom');
const es3 = require('../../node/es3');

const ROOT = path.resolve(__dirname, '..', '..');
const C = es3.camera();

function tmpdir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'genfx-ae-' + tag + '-'));
}

function fakeAeProject() {
  const ae = createAe();
  ae.context.$.evalFile(path.join(ROOT, 'host', 'index.jsx'));
  assert.match(ae.evalScript('genfxLoad(' + JSON.stringify(ROOT) + ')'), /"ok":true/);
  const projectDir = tmpdir('aep');
  ae.project._file = new ae.classes.File(path.join(projectDir, 'shot010.aep'));
  ae.project.bitsPerChannel = 32;
  ae.project.linearBlending = true;
  const comp = ae.addComp({
    name: 'shot010_comp',
    width: 64,
    height: 64,
    frameRate: 24,
    duration: 2,
    displayStartFrame: 1001,
    workAreaStart: 2 / 24,
    workAreaDuration: 3 / 24,
    time: 10 / 24,
  });
  comp.layers._addSolid('plate').selected = true;
  // A camera trucking 3 px a frame.
  const base = C.aeCameraToWorld([32, 32, -500], [32, 32, 0]);
  comp.layers._addCamera('Camera 1', (t) => {
    const m = base.slice();
    m[3] += 3 * Math.round(t * 24);
    return m;
  }, () => 500);
  comp.layer(2).selected = true; // the plate (the camera went on top)
  const host = makeHost((script, cb) => cb(ae.evalScript(script)));
  return { ae, comp, projectDir, host };
}

module.exports = { fakeAeProject, tmpdir };
