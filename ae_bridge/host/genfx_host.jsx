/*
 * GenfxHost: what the GenFX panel asks of After Effects. ExtendScript (ES3), After Effects 24+.
 * Needs GenfxJSON (host/lib/json.js), GenfxCamera (shared/camera.js) and GenfxRequest
 * (shared/request.js) loaded first (host/index.jsx does it).
 *
 * The panel calls  GenfxHost.call("name", "<JSON args>")  through CSInterface.evalScript and gets
 * a JSON string back: {"ok":true,"value":...} or {"ok":false,"error":"...","line":N}.
 * All I/O with the server happens in the panel's Node side; this script only reads the comp and
 * its camera, and imports frames that are already on disk.
 *
 * Frames are AE display frames (timeline numbers: comp frame index + comp.displayStartFrame).
 */
var GenfxHost = (function () {
  var AI_LABEL = 10; // "Purple" in AE's default label colours (Preferences > Labels)
  var EVAL_LAYER_NAME = "__genfx_camera_eval__";
  var SAMPLE_CHUNK_LIMIT = 2000;

  function activeComp() {
    var item = app.project.activeItem;
    if (!(item instanceof CompItem)) throw new Error("Open a composition (make it the active item) first.");
    return item;
  }

  /** True when the comp has a camera AE can render through: disabled (eye off) cameras do not count. */
  function hasCamera(comp) {
    var i, l;
    for (i = 1; i <= comp.numLayers; i++) {
      l = comp.layer(i);
      if (l instanceof CameraLayer && l.enabled) return true;
    }
    return false;
  }

  /** The colour spaces an output can be written in (genfx.v1.ColorSpace) and their OCIO names. */
  var OCIO_NAMES = { linear_rec709: "Linear Rec.709 (sRGB)", acescg: "ACEScg" };

  /**
   * Warnings about the project's colour settings for linear, over-range EXR frames. colour: {engine:
   * "adobe" (ICC, the default) | "ocio", space: "linear_rec709" | "acescg"}. Scripting exposes no OCIO
   * setting, so the panel says which engine the project uses. Under OCIO the working space and linear
   * blending are OCIO's, so only the bit depth matters, and AE gives untagged footage the config's default
   * media colour space: the layer must be told what the frames are.
   */
  function projectWarnings(colour) {
    var p = app.project, out = [];
    var c = colour || {};
    if (p.bitsPerChannel !== 32) {
      out.push("Project is " + p.bitsPerChannel + " bpc: the AI layer's linear EXR values above 1.0 clip. " +
        "Use 32 bpc (File > Project Settings > Color).");
    }
    if (c.engine === "ocio") {
      out.push("OCIO colour management: set the AI layer's Interpret Footage > Color > Media Color Space to \"" +
        (OCIO_NAMES[c.space] || OCIO_NAMES.linear_rec709) + "\" (the frames are written in it).");
      return out;
    }
    var linear = p.workingSpace ? p.linearizeWorkingSpace : p.linearBlending;
    if (!linear) {
      out.push(p.workingSpace ?
        "Working space \"" + p.workingSpace + "\" is not linearized: the scene-linear EXR frames will not composite linearly." :
        "No working space and no linear blending: the scene-linear EXR frames will not composite linearly.");
    }
    return out;
  }

  function projectFile() {
    var f = app.project.file;
    return f ? { path: f.fsName, folder: f.parent.fsName, name: f.name } : null;
  }

  function compInfo(args) {
    var comp = activeComp();
    var fd = comp.frameDuration, dsf = comp.displayStartFrame;
    var wa = GenfxRequest.workAreaFrames(comp.workAreaStart, comp.workAreaDuration, fd, dsf);
    var sel = comp.selectedLayers;
    var cam = comp.activeCamera;
    return {
      name: comp.name,
      id: comp.id,
      width: comp.width,
      height: comp.height,
      pixelAspect: comp.pixelAspect,
      frameRate: comp.frameRate,
      frameDuration: fd,
      displayStartFrame: dsf,
      firstFrame: dsf,
      lastFrame: GenfxRequest.timeToFrame(comp.duration, fd, dsf) - 1,
      workArea: wa,
      currentFrame: GenfxRequest.timeToFrame(comp.time, fd, dsf),
      hasCamera: hasCamera(comp),
      activeCamera: cam ? cam.name : null,
      selectedLayer: sel.length ? { index: sel[0].index, name: sel[0].name } : null,
      project: projectFile(),
      bitsPerChannel: app.project.bitsPerChannel,
      warnings: projectWarnings(args && args.colour)
    };
  }

  function checkRange(comp, frameStart, frameEnd) {
    var first = comp.displayStartFrame;
    var last = GenfxRequest.timeToFrame(comp.duration, comp.frameDuration, first) - 1;
    if (frameStart < first || frameEnd > last || frameEnd < frameStart) {
      throw new Error("Frames " + frameStart + "-" + frameEnd + " are outside the comp (" + first + "-" + last + ").");
    }
    if (frameEnd - frameStart + 1 > SAMPLE_CHUNK_LIMIT) {
      throw new Error("Sample at most " + SAMPLE_CHUNK_LIMIT + " frames per call (the panel sends chunks).");
    }
  }

  /** Puts the selection back; locked layers refuse selection changes, so they are left as they are. */
  function restoreSelection(comp, layers) {
    var i, l;
    for (i = 1; i <= comp.numLayers; i++) {
      l = comp.layer(i);
      if (!l.locked && l.selected) l.selected = false;
    }
    for (i = 0; i < layers.length; i++) {
      if (!layers[i].locked) layers[i].selected = true;
    }
  }

  // Each expression reads the camera AE renders with at that time and can never throw: AE evaluates an
  // expression as soon as it is set, at the comp's current time, and disables it for good on an error
  // (e.g. no active camera at the current time). The flag in the zoom carrier says whether a camera was
  // there: 1 = yes, 0 = AE renders that frame with its default camera.
  var WORLD_EXPRESSION = "var p = [0, 0, 0]; try { p = thisComp.activeCamera.toWorld(%P); } catch (e) { p = [0, 0, 0]; } p;";
  var ZOOM_EXPRESSION = "var z = [0, 0, 0]; try { z = [thisComp.activeCamera.zoom, 1, 0]; } catch (e) { z = [0, 0, 0]; } z;";

  /**
   * The comp's camera at every display frame in [frameStart, frameEnd], through the camera AE renders
   * with at each frame (thisComp.activeCamera: camera cuts, parenting, auto-orient and the point of
   * interest all included; disabled cameras never render). Scripting exposes no world matrices, so one
   * temporary shape layer (a shape layer creates no project item, a null would leave a solid behind)
   * carries five 3D Point Control effects whose expressions call toWorld on the active camera;
   * valueAtTime reads them per frame, and the carrier goes again, all in one undo group. Frames without
   * an active camera use AE's default 50 mm camera, as AE renders them. No enabled camera at all: the
   * default camera, one static sample, nothing added.
   * args: {frameStart, frameEnd, unitsPerPixel?}
   * -> {camera: {width, height, samples: [genfx.v1.CameraSample]}, ae: [{frame, matrix, zoom, isDefault}],
   *     isDefault, isStatic, pixelAspect}
   */
  function sampleCamera(args) {
    var comp = activeComp();
    var f0 = args.frameStart, f1 = args.frameEnd;
    checkRange(comp, f0, f1);
    var w = comp.width, h = comp.height, pa = comp.pixelAspect;
    var opts = { compWidth: w, compHeight: h, pixelAspect: pa, unitsPerPixel: args.unitsPerPixel };
    var fallback = GenfxCamera.aeDefaultCamera(w, h, pa);
    var ae = [], samples = [], f, i, defaults = 0;

    function push(frame, matrix, zoom, isDefault) {
      opts.frame = frame;
      opts.zoom = zoom;
      ae.push({ frame: frame, matrix: matrix, zoom: zoom, isDefault: isDefault });
      samples.push(GenfxCamera.fromAfterEffects(matrix, opts));
    }

    if (!hasCamera(comp)) {
      push(f0, fallback.matrix, fallback.zoom, true);
      return {
        camera: { width: w, height: h, samples: samples },
        ae: ae, isDefault: true, isStatic: true, pixelAspect: pa
      };
    }

    var selection = comp.selectedLayers.slice(0);
    var carrier = null;
    app.beginUndoGroup("GenFX: sample camera");
    try {
      try {
        try {
          carrier = comp.layers.addShape();
          carrier.name = EVAL_LAYER_NAME;
          // Last in the stack, so no user expression that indexes layers sees a shifted index.
          carrier.moveToEnd();
          var parade = /** @type {PropertyGroup} */ (carrier.property("ADBE Effect Parade"));
          for (i = 0; i < 5; i++) parade.addProperty("ADBE Point3D Control");
          // Adding an effect invalidates earlier property references: fetch them only now.
          /** @type {Property<any>[]} */
          var props = [];
          for (i = 1; i <= 5; i++) {
            props.push(/** @type {Property<any>} */ (/** @type {PropertyGroup} */ (parade.property(i)).property(1)));
          }
          props[0].expression = WORLD_EXPRESSION.replace("%P", "[0, 0, 0]");
          props[1].expression = WORLD_EXPRESSION.replace("%P", "[1, 0, 0]");
          props[2].expression = WORLD_EXPRESSION.replace("%P", "[0, 1, 0]");
          props[3].expression = WORLD_EXPRESSION.replace("%P", "[0, 0, 1]");
          props[4].expression = ZOOM_EXPRESSION;
          var t, o, x, y, z, zoom;
          for (f = f0; f <= f1; f++) {
            t = GenfxRequest.frameToTime(f, comp.frameDuration, comp.displayStartFrame);
            zoom = props[4].valueAtTime(t, false);
            for (i = 0; i < 5; i++) {
              if (!props[i].expressionEnabled) {
                throw new Error("Camera expression disabled by After Effects at frame " + f + ": " + props[i].expressionError);
              }
            }
            if (zoom[1] !== 1) {
              defaults += 1;
              push(f, fallback.matrix, fallback.zoom, true);
              continue;
            }
            o = props[0].valueAtTime(t, false);
            x = props[1].valueAtTime(t, false);
            y = props[2].valueAtTime(t, false);
            z = props[3].valueAtTime(t, false);
            push(f, GenfxCamera.matrixFromToWorld(o, x, y, z, pa), zoom[0], false);
          }
        } finally {
          if (carrier) carrier.remove();
        }
      } finally {
        restoreSelection(comp, selection);
      }
    } finally {
      app.endUndoGroup();
    }
    var isStatic = GenfxCamera.isStatic(samples);
    return {
      camera: { width: w, height: h, samples: isStatic ? [samples[0]] : samples },
      ae: ae, isDefault: defaults === samples.length, isStatic: isStatic, pixelAspect: pa,
      defaultFrames: defaults
    };
  }

  function genfxFolder() {
    var items = app.project.items, i, it;
    for (i = 1; i <= items.length; i++) {
      it = items[i];
      if (it instanceof FolderItem && it.name === "GenFX") return it;
    }
    return items.addFolder("GenFX");
  }

  /**
   * Imports an EXR sequence as an AI layer in the active comp.
   * args: {firstFile (path of the first frame), frameStart (display frame of the first file),
   *        placeAtFrame? (display frame to start at; default frameStart), frameEnd?, prompt, jobId,
   *        seed, model, modelHash?, loras? ([{name, weight}], the request's), server?, label?, colour?}
   * Sequence import, frame rate conformed to the comp, pixel aspect the comp's, premultiplied alpha
   * (when the frames have alpha); the layer goes above the selected layer (or on top), starts at the
   * right comp time, is named `AI · <prompt>`, gets a label colour and a comment with job id / seed /
   * model. A one-frame job comes in as a still: no frame rate to conform, a one-frame layer.
   */
  function importSequence(args) {
    var comp = activeComp();
    var file = new File(args.firstFile);
    if (!file.exists) throw new Error("Missing first frame: " + file.fsName);
    var selected = comp.selectedLayers.length ? comp.selectedLayers[0] : null;
    var place = args.placeAtFrame === undefined || args.placeAtFrame === null ? args.frameStart : args.placeAtFrame;
    var comment = GenfxRequest.layerComment({
      jobId: args.jobId, seed: args.seed, model: args.model, modelHash: args.modelHash, loras: args.loras,
      frameStart: args.frameStart, frameEnd: args.frameEnd === undefined ? args.frameStart : args.frameEnd,
      server: args.server, prompt: args.prompt
    });
    var label = args.label === undefined ? AI_LABEL : args.label;
    app.beginUndoGroup("GenFX: import AI layer");
    try {
      var io = new ImportOptions(file);
      io.sequence = true;
      io.forceAlphabetical = false;
      if (io.canImportAs(ImportAsType.FOOTAGE)) io.importAs = ImportAsType.FOOTAGE;
      var item = app.project.importFile(io);
      if (!(item instanceof FootageItem)) throw new Error("Importing " + file.fsName + " did not give footage.");
      item.parentFolder = genfxFolder();
      item.comment = comment;
      item.label = label;
      // The frames are made at the comp's size for its pixel aspect (the camera sample carries it).
      item.pixelAspect = comp.pixelAspect;
      var src = item.mainSource;
      // Sequences import at the preference's rate otherwise; setting it on a still is an error.
      if (!src.isStill) src.conformFrameRate = comp.frameRate;
      // EXR colour is premultiplied by convention; alphaMode only means something with alpha.
      if (src.hasAlpha) {
        src.alphaMode = AlphaMode.PREMULTIPLIED;
        src.premulColor = [0, 0, 0];
      }
      var layer = comp.layers.add(item);
      if (selected) layer.moveBefore(selected);
      // add() honours "Create Layers at Composition Start Time": always set the start explicitly.
      layer.startTime = GenfxRequest.frameToTime(place, comp.frameDuration, comp.displayStartFrame);
      if (src.isStill) layer.outPoint = layer.startTime + comp.frameDuration; // one frame, not the comp
      layer.name = GenfxRequest.layerName(args.prompt);
      layer.label = label;
      layer.comment = comment;
      return {
        layerIndex: layer.index,
        layerName: layer.name,
        itemId: item.id,
        startTime: layer.startTime,
        inPoint: layer.inPoint,
        outPoint: layer.outPoint,
        isStill: src.isStill,
        warnings: projectWarnings(args.colour)
      };
    } finally {
      app.endUndoGroup();
    }
  }

  var API = {
    ping: function () { return "pong"; },
    compInfo: function (args) { return compInfo(args); },
    projectWarnings: function (args) { return projectWarnings(args && args.colour); },
    sampleCamera: sampleCamera,
    importSequence: importSequence
  };

  /** Entry point for the panel: name + JSON args in, JSON envelope out. Never throws. */
  function call(name, argsJson) {
    try {
      if (!API.hasOwnProperty(name)) throw new Error("GenfxHost: no function " + name);
      var args = argsJson ? GenfxJSON.parse(argsJson) : {};
      return GenfxJSON.stringify({ ok: true, value: API[name](args) });
    } catch (err) {
      var e = /** @type {any} */ (err);
      return GenfxJSON.stringify({ ok: false, error: String(e && e.message ? e.message : e), line: e && e.line });
    }
  }

  return { call: call, AI_LABEL: AI_LABEL, EVAL_LAYER_NAME: EVAL_LAYER_NAME };
})();
