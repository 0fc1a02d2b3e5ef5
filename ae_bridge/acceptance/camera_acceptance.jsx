/*
 * Acceptance run of the GenFX host script in a real After Effects (this never ran here: no AE).
 * ExtendScript (ES3), After Effects 24+. File > Scripts > Run Script File... and pick this file inside
 * the extension folder (it loads ../host/index.jsx and the rest from there). Enable Preferences >
 * Scripting & Expressions > "Allow Scripts to Write Files and Access Network" is NOT needed.
 *
 * It builds test comps in a new project folder "GenFX acceptance", samples each comp's camera with the
 * panel's own host call (GenfxHost.sampleCamera) and checks, frame by frame, that each sample projects
 * 3D nulls to the pixels AE itself gives them (toComp), to 0.05 px:
 *   1. 1920x1080, square pixels: a two-node camera parented to a turning null, zooming;
 *   2. 720x486, pixel aspect 0.9 (D1): a rotated one-node camera;
 *   3. 720x486, pixel aspect 0.9, no camera: AE's default camera;
 *   4. 1280x720, a camera that starts at frame 10 with the current time at frame 0 (frames 0-9 use the
 *      default camera; before the fix the expressions were disabled at once);
 *   5. the same with the camera's eye switched off: the default camera throughout.
 * It also checks that sampling leaves no item in the project (a null would leave a solid) and tells
 * you to look at Edit > Undo: one "GenFX: sample camera" entry per comp. At the end it writes a report
 * into the Info panel ($.writeln) and an alert; delete the folder "GenFX acceptance" afterwards.
 */
(function () {
  var TOLERANCE_PX = 0.05;
  var here = new File($.fileName).parent.parent; // the extension folder
  $.evalFile(new File(here.fsName + "/host/index.jsx"));
  genfxLoad(here.fsName);
  var lines = [], failures = 0;

  function report(ok, text) {
    if (!ok) failures += 1;
    lines.push((ok ? "PASS  " : "FAIL  ") + text);
  }

  function parse(text) {
    var r = GenfxJSON.parse(text);
    if (!r.ok) throw new Error(r.error);
    return r.value;
  }

  /** A 3D null at `position` (comp coordinates) with two point controls: its world and comp positions. */
  function probe(comp, position, name) {
    var layer = comp.layers.addNull();
    layer.name = name;
    layer.threeDLayer = true;
    /** @type {Property<any>} */ (layer.property("ADBE Transform Group").property("ADBE Position")).setValue(position);
    var parade = /** @type {PropertyGroup} */ (layer.property("ADBE Effect Parade"));
    parade.addProperty("ADBE Point3D Control");
    parade.addProperty("ADBE Point Control");
    var world = /** @type {Property<any>} */ (/** @type {PropertyGroup} */ (parade.property(1)).property(1));
    var onScreen = /** @type {Property<any>} */ (/** @type {PropertyGroup} */ (parade.property(2)).property(1));
    world.expression = "thisLayer.toWorld(thisLayer.anchorPoint)";
    onScreen.expression = "var p = thisLayer.toComp(thisLayer.anchorPoint); [p[0], p[1]]";
    return { world: world, onScreen: onScreen };
  }

  function checkComp(comp, label, f0, f1) {
    var fd = comp.frameDuration, pa = comp.pixelAspect;
    var probes = [], i, f, k;
    var spots = [[0.2, 0.3, 0], [0.8, 0.25, 300], [0.5, 0.5, -400], [0.1, 0.9, 800]];
    for (i = 0; i < spots.length; i++) {
      probes.push(probe(comp, [spots[i][0] * comp.width, spots[i][1] * comp.height, spots[i][2]], "probe " + i));
    }
    comp.openInViewer();
    var before = app.project.numItems;
    var r = parse(GenfxHost.call("sampleCamera", GenfxJSON.stringify({ frameStart: f0 + comp.displayStartFrame, frameEnd: f1 + comp.displayStartFrame })));
    report(app.project.numItems === before, label + ": sampling left no item in the project");
    var worst = 0;
    for (f = f0; f <= f1; f++) {
      var sample = r.camera.samples.length === 1 ? r.camera.samples[0] : r.camera.samples[f - f0];
      for (k = 0; k < probes.length; k++) {
        var t = f * fd;
        var w = probes[k].world.valueAtTime(t, false);
        var expected = probes[k].onScreen.valueAtTime(t, false);
        var got = GenfxCamera.projectToPixel(sample, comp.width, comp.height, GenfxCamera.aePointToWorld(w, comp.width, comp.height, 0.01, pa));
        worst = Math.max(worst, Math.abs(got[0] - expected[0]), Math.abs(got[1] - expected[1]));
      }
    }
    report(worst <= TOLERANCE_PX, label + ": samples project the nulls where AE does (worst " + worst.toFixed(4) + " px)");
    return r;
  }

  var folder = app.project.items.addFolder("GenFX acceptance");

  function newComp(name, w, h, pa) {
    var comp = app.project.items.addComp(name, w, h, pa, 2, 24);
    comp.parentFolder = folder;
    return comp;
  }

  try {
    var c1 = newComp("acceptance 1 parented zoom", 1920, 1080, 1);
    var rig = c1.layers.addNull();
    rig.threeDLayer = true;
    var rigRotation = /** @type {Property<any>} */ (rig.property("ADBE Transform Group").property("ADBE Rotate Y"));
    rigRotation.setValueAtTime(0, 0);
    rigRotation.setValueAtTime(2, 40);
    var cam1 = c1.layers.addCamera("two-node", [960, 540]);
    cam1.parent = rig;
    var zoom1 = /** @type {Property<any>} */ (cam1.property("ADBE Camera Options Group").property("ADBE Camera Zoom"));
    zoom1.setValueAtTime(0, 1500);
    zoom1.setValueAtTime(2, 2600);
    checkComp(c1, "1920x1080 parented, zooming", 0, 47);

    var c2 = newComp("acceptance 2 D1 rotated", 720, 486, 0.9);
    var cam2 = c2.layers.addCamera("one-node", [360, 243]);
    cam2.autoOrient = AutoOrientType.NO_AUTO_ORIENT;
    /** @type {Property<any>} */ (cam2.property("ADBE Transform Group").property("ADBE Rotate Z")).setValue(12);
    /** @type {Property<any>} */ (cam2.property("ADBE Transform Group").property("ADBE Rotate X")).setValue(-8);
    checkComp(c2, "720x486 PAR 0.9 rotated camera", 0, 10);

    var c3 = newComp("acceptance 3 D1 default camera", 720, 486, 0.9);
    var r3 = checkComp(c3, "720x486 PAR 0.9 without a camera", 0, 0);
    report(r3.isDefault && Math.abs(r3.camera.samples[0].focal_length_mm - 50) < 1e-6, "default camera is 50 mm on width x pixel aspect");

    var c4 = newComp("acceptance 4 late camera", 1280, 720, 1);
    var cam4 = c4.layers.addCamera("late", [640, 360]);
    cam4.inPoint = 10 * c4.frameDuration;
    c4.time = 0;
    var r4 = checkComp(c4, "camera from frame 10, current time 0", 0, 20);
    report(r4.defaultFrames === 10, "frames 0-9 sampled with the default camera (" + r4.defaultFrames + ")");

    var c5 = newComp("acceptance 5 disabled camera", 1280, 720, 1);
    c5.layers.addCamera("off", [640, 360]).enabled = false;
    var r5 = checkComp(c5, "disabled camera", 0, 3);
    report(r5.isDefault, "a disabled camera is ignored");
  } catch (e) {
    var err = /** @type {any} */ (e);
    report(false, "stopped: " + String(err) + " (line " + err.line + ")");
  }
  lines.push(failures ? failures + " failed" : "all passed");
  lines.push("Now check Edit > Undo: each comp's sampling is one \"GenFX: sample camera\" entry.");
  for (var n = 0; n < lines.length; n++) $.writeln(lines[n]);
  alert(lines.join("\n"));
})();
