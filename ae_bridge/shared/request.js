/*
 * GenfxRequest: frame/time helpers, genfx.v1.GenerateRequest building, and the names and comments
 * the AI layer gets. ES3, one global; loaded by the ExtendScript host, the panel and Node (node/es3.js).
 *
 * Frames: the panel and the server speak in AE *display* frame numbers (what the timeline shows:
 * comp frame index + comp.displayStartFrame), so files are named by the frame a compositor sees and a
 * job from Houdini (frames 1001..) lands on AE frame 1001 when the comp starts at 1001.
 * Messages use the proto field names (snake_case), as @grpc/proto-loader is loaded with keepCase.
 */
var GenfxRequest = (function () {
  var LAYER_PREFIX = "AI \u00b7 ";   // "AI · "
  var LAYER_PROMPT_CHARS = 60;
  var MAX_CLIENT_TAG = 256;
  var MAX_NAME_CHARS = 64;

  function fail(message) {
    throw new Error(message);
  }

  function isInt(v) {
    return typeof v === "number" && isFinite(v) && Math.floor(v) === v;
  }

  /** Comp time (seconds from the comp start) -> display frame. */
  function timeToFrame(time, frameDuration, displayStartFrame) {
    return Math.round(time / frameDuration) + (displayStartFrame || 0);
  }

  /** Display frame -> comp time in seconds (what Layer.startTime and valueAtTime take). */
  function frameToTime(frame, frameDuration, displayStartFrame) {
    return (frame - (displayStartFrame || 0)) * frameDuration;
  }

  /** The work area as an inclusive range of display frames (AE's work-area end is exclusive). */
  function workAreaFrames(workAreaStart, workAreaDuration, frameDuration, displayStartFrame) {
    var first = timeToFrame(workAreaStart, frameDuration, displayStartFrame);
    var count = Math.max(1, Math.round(workAreaDuration / frameDuration));
    return { start: first, end: first + count - 1 };
  }

  /**
   * A frame rate as genfx.v1.Rational: NTSC rates (23.976, 29.97, 59.94 ...) become n*1000/1001,
   * whole rates n/1, anything else the nearest x/1000.
   */
  function fpsToRational(fps) {
    var f = Number(fps), n;
    if (!isFinite(f) || f <= 0) fail("fps: must be > 0 (got " + fps + ")");
    n = Math.round(f);
    if (Math.abs(f - n) < 1e-6) return { numerator: n, denominator: 1 };
    n = Math.round(f * 1.001);
    if (Math.abs(f - n * 1000 / 1001) < 1e-4) return { numerator: n * 1000, denominator: 1001 };
    return { numerator: Math.round(f * 1000), denominator: 1000 };
  }

  /**
   * Output.name from free text (a comp name): the port of the SDK's genfx.request.output_name, rule for
   * rule, held to the same answers by tests/golden/output_names.json. "" = the server's default name.
   * Drop everything before the first letter, digit or '_' and after the last letter, digit, '_' or '-';
   * each run of other characters inside becomes one '_'; each run of dots one '.'; cut to 64
   * characters, then drop dots left at the end. Whole runs are replaced, so a character outside the
   * BMP (two UTF-16 units here, one code point in Python) gives the same result in both.
   */
  function outputName(text) {
    var s = String(text === undefined || text === null ? "" : text);
    s = s.replace(/^[^A-Za-z0-9_]+/, "").replace(/[^A-Za-z0-9_\-]+$/, "");
    s = s.replace(/[^A-Za-z0-9_.\-]+/g, "_").replace(/\.{2,}/g, ".");
    return s.substring(0, MAX_NAME_CHARS).replace(/\.+$/, "");
  }

  function collapse(text) {
    return String(text || "").replace(/\s+/g, " ").replace(/^ | $/g, "");
  }

  /** Layer name: `AI · <prompt>` (prompt on one line, cut to 60 characters with an ellipsis). */
  function layerName(prompt) {
    var p = collapse(prompt);
    if (p.length > LAYER_PROMPT_CHARS) p = p.substring(0, LAYER_PROMPT_CHARS - 1) + "\u2026";
    return LAYER_PREFIX + p;
  }

  /** "dust \u00d70.8": a LoRA and its weight as the SDK's genfx.provenance.lora_label writes it (0 = 1.0). */
  function loraLabel(name, weight) {
    return name + " \u00d7" + (Number(weight) || 1);
  }

  /**
   * GenerateRequest.loras from the panel's rows [{name, weight}]; weight "" or 0 = the server's 1.0.
   * The count, the weight range and which model a LoRA fits are the server's rules (ServerInfo.limits,
   * LoraInfo.models): it refuses a request naming loras[i].
   */
  function loraRefs(rows) {
    var out = [], i, name, raw, weight;
    if (!rows) return out;
    for (i = 0; i < rows.length; i++) {
      name = collapse(rows[i].name);
      if (!name.length) fail("loras[" + i + "].name: pick a LoRA or remove the row");
      raw = rows[i].weight;
      weight = raw === undefined || raw === null || String(raw).replace(/\s+/g, "") === "" ? 0 : Number(raw);
      if (!isFinite(weight)) fail("loras[" + i + "].weight: must be a number (got " + raw + ")");
      out.push({ name: name, weight: weight });
    }
    return out;
  }

  /** Layer comment: what made the frames (job id, seed, model, hash, LoRAs, frames, prompt). */
  function layerComment(info) {
    var lines = ["GenFX job " + info.jobId], loras = [], i;
    lines.push("seed: " + info.seed);
    lines.push("model: " + info.model + (info.modelHash ? " (" + String(info.modelHash).substring(0, 12) + ")" : ""));
    for (i = 0; info.loras && i < info.loras.length; i++) loras.push(loraLabel(info.loras[i].name, info.loras[i].weight));
    if (loras.length) lines.push("loras: " + loras.join(", "));
    if (info.frameStart !== undefined) lines.push("frames: " + info.frameStart + "-" + info.frameEnd);
    if (info.server) lines.push("server: " + info.server);
    lines.push("prompt: " + collapse(info.prompt));
    return lines.join(" | ");
  }

  // genfx.v1.ColorSpace by the SDK's names (genfx.request.COLORSPACES); "" = the server's (linear Rec.709).
  var COLOR_SPACES = {
    "": "COLOR_SPACE_UNSPECIFIED",
    linear_rec709: "COLOR_SPACE_LINEAR_REC709",
    acescg: "COLOR_SPACE_ACESCG"
  };

  function colorSpace(name) {
    var key = name === undefined || name === null ? "" : String(name);
    if (!COLOR_SPACES.hasOwnProperty(key)) fail("colorspace: one of linear_rec709, acescg (got " + key + ")");
    return COLOR_SPACES[key];
  }

  function intField(v, name, min, dflt) {
    var n;
    if (v === undefined || v === null || v === "") return dflt;
    n = Number(v);
    if (!isInt(n)) fail(name + ": must be a whole number (got " + v + ")");
    if (n < min) fail(name + ": must be >= " + min + " (got " + n + ")");
    return n;
  }

  /**
   * A genfx.v1.GenerateRequest (plain object, proto field names) from the panel's form.
   * opts: prompt, [negativePrompt], [seed: digits or number; empty = server picks], [steps],
   *   [guidance], [model], frameStart, frameEnd (display frames, inclusive), fps (number),
   *   [keyframeStep], [width], [height] (0 = the camera's size), [name], camera: {width, height,
   *   samples: [genfx.v1.CameraSample...]} (one sample, or one per frame), [clientTag],
   *   [colorspace: "" | "linear_rec709" | "acescg", the frames' colour space],
   *   [loras: [{name, weight}], see loraRefs].
   */
  function buildGenerateRequest(opts) {
    var prompt = collapse(opts.prompt);
    if (!prompt.length) fail("prompt: must not be empty");
    var frameStart = intField(opts.frameStart, "frame_start", -2147483648, undefined);
    var frameEnd = intField(opts.frameEnd, "frame_end", -2147483648, undefined);
    if (frameStart === undefined || frameEnd === undefined) fail("frame_start/frame_end: required");
    if (frameStart < 0) fail("frame_start: must be >= 0 (AE display frame; got " + frameStart + ")");
    if (frameEnd < frameStart) fail("frame_end: must be >= frame_start (" + frameStart + "; got " + frameEnd + ")");
    var cam = opts.camera;
    if (!cam || !cam.samples || !cam.samples.length) fail("camera.samples: must hold at least one sample");
    var req = {
      prompt: prompt,
      negative_prompt: collapse(opts.negativePrompt),
      steps: intField(opts.steps, "steps", 0, 0),
      model: String(opts.model || ""),
      loras: loraRefs(opts.loras),
      shot: {
        frame_start: frameStart,
        frame_end: frameEnd,
        fps: fpsToRational(opts.fps),
        keyframe_step: intField(opts.keyframeStep, "keyframe_step", 0, 0)
      },
      output: {
        width: intField(opts.width, "output.width", 0, 0),
        height: intField(opts.height, "output.height", 0, 0),
        name: outputName(opts.name),
        colorspace: colorSpace(opts.colorspace)
      },
      camera: { samples: cam.samples, width: cam.width, height: cam.height },
      client_tag: String(opts.clientTag || "").substring(0, MAX_CLIENT_TAG)
    };
    if (opts.seed !== undefined && opts.seed !== null && String(opts.seed) !== "") {
      if (!/^[0-9]{1,20}$/.test(String(opts.seed))) fail("seed: must be a whole number >= 0 (got " + opts.seed + ")");
      req.seed = String(opts.seed); // uint64: a decimal string keeps every digit
    }
    if (opts.guidance !== undefined && opts.guidance !== null && opts.guidance !== "") {
      req.guidance = Number(opts.guidance);
      if (!isFinite(req.guidance)) fail("guidance: must be a number (got " + opts.guidance + ")");
    }
    return req;
  }

  return {
    LAYER_PREFIX: LAYER_PREFIX,
    timeToFrame: timeToFrame,
    frameToTime: frameToTime,
    workAreaFrames: workAreaFrames,
    fpsToRational: fpsToRational,
    outputName: outputName,
    layerName: layerName,
    layerComment: layerComment,
    loraLabel: loraLabel,
    loraRefs: loraRefs,
    buildGenerateRequest: buildGenerateRequest,
    COLOR_SPACES: COLOR_SPACES
  };
})();
