'use strict';
// Runs under the Node versions CEP embeds (scripts/cep_node_check.sh passes the binaries), so it
// uses no node:test and nothing newer than Node 15: the ES3 modules against the golden file, the
// host script in the fake AE, and the whole panel flow (gRPC client + controller) against a real
// server subprocess.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const es3 = require('../../node/es3');
const { startServer } = require('../helpers/server');
const { PanelController } = require('../../node/panel_controller');
const { makeHost } = require('../../node/host_bridge');
const { createAe } = require('../mock/ae_dom');

const ROOT = path.resolve(__dirname, '..', '..');
const C = es3.camera();

function goldens() {
  const golden = JSON.parse(fs.readFileSync(path.resolve(ROOT, '..', 'tests', 'golden', 'camera_projections.json'), 'utf8'));
  for (const g of golden.cases) {
    const m = g.expected.camera_to_world_ae;
    const s = C.fromAfterEffects(m, { frame: g.frame, zoom: g.zoom, compWidth: g.comp.width, compHeight: g.comp.height, pixelAspect: g.comp.pixel_aspect });
    s.camera_to_world.forEach((v, i) => assert.ok(Math.abs(v - g.expected.sample.camera_to_world[i]) < 1e-6, g.name));
    for (const p of g.points) {
      const px = C.projectToPixel(s, g.comp.width, g.comp.height, p.world);
      assert.ok(Math.abs(px[0] - p.pixel[0]) < 1e-6 && Math.abs(px[1] - p.pixel[1]) < 1e-6, g.name);
    }
  }
  return golden.cases.length;
}

function fakeAe() {
  const ae = createAe();
  ae.context.$.evalFile(path.join(ROOT, 'host', 'index.jsx'));
  assert.ok(/"ok":true/.test(ae.evalScript('genfxLoad(' + JSON.stringify(ROOT) + ')')));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genfx-cep-node-'));
  ae.project._file = new ae.classes.File(path.join(dir, 'smoke.aep'));
  const comp = ae.addComp({ name: 'smoke', width: 64, height: 64, frameRate: 24, duration: 1, displayStartFrame: 1001, workAreaDuration: 2 / 24 });
  const base = C.aeCameraToWorld([32, 32, -400], [32, 32, 0]);
  comp.layers._addCamera('cam', (t) => {
    const m = base.slice();
    m[3] += 5 * Math.round(t * 24);
    return m;
  }, () => 400);
  return { ae: ae, comp: comp, dir: dir };
}

function main() {
  console.log('node ' + process.version + ' (' + process.versions.v8 + ')');
  console.log('camera goldens: ' + goldens() + ' cases ok');
  const f = fakeAe();
  let server;
  let panel;
  return startServer()
    .then((s) => {
      server = s;
      panel = new PanelController({ host: makeHost((script, cb) => cb(f.ae.evalScript(script))) });
      return panel.connect(server.address, '');
    })
    .then((info) => {
      assert.ok(info.models.length > 0);
      const events = [];
      return panel.generate({ prompt: 'smoke test', seed: '1', steps: 1, model: 'tiny' }, { onEvent: (e) => events.push(e.kind) }).then((r) => {
        assert.strictEqual(r.job.state, 'JOB_STATE_SUCCEEDED');
        assert.deepStrictEqual(r.job.frame_infos.map((i) => i.frame), [1001, 1002]);
        assert.deepStrictEqual(r.frames.map((f) => f.fileName), r.job.frame_infos.map((i) => i.file_name));
        assert.ok(events.indexOf('progress') >= 0 && events.indexOf('frame_done') >= 0);
        for (const fr of r.frames) {
          const serverFile = path.join(server.dataDir, 'jobs', r.job.id, fr.fileName);
          assert.ok(fs.readFileSync(fr.path).equals(fs.readFileSync(serverFile)));
        }
        assert.strictEqual(r.job.request.camera.samples.length, 2);
        const layer = f.comp.layer(r.imported.layerIndex);
        assert.strictEqual(layer.name, 'AI \u00b7 smoke test');
        assert.strictEqual(f.ae.log.imports[0].sequence, true);
        console.log('panel flow ok: job ' + r.job.id + ', ' + r.frames.length + ' frames fetched and verified, layer "' + layer.name + '"');
        return panel.listJobs();
      });
    })
    .then((jobs) => {
      assert.ok(jobs.length >= 1);
    })
    .then(
      () => {
        panel.close();
        return server.stop();
      },
      (e) => {
        if (panel) panel.close();
        return (server ? server.stop() : Promise.resolve()).then(() => {
          throw e;
        });
      }
    );
}

main().then(
  () => console.log('smoke: 1 passed, 0 failed'),
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    console.log('smoke: 0 passed, 1 failed');
    process.exit(1);
  }
);
