'use strict';
// What the GenFX panel does, without the DOM: connect, read the comp, sample its camera, build and
// submit the request, follow progress, download frames as they finish (sha256-checked), import the
// sequence as an AI layer, list jobs (also those launched from Houdini) and import any finished one.
// The panel (client/panel.js) wires this to the page; the tests drive it against a real server and
// the fake AE DOM. Node 15.9 / 17.7 compatible (see genfx_client.js).
const os = require('os');
const path = require('path');
const { GenfxClient, isTerminal } = require('./genfx_client');
const es3 = require('./es3');

const Camera = es3.camera();
const Request = es3.request();
// Frames per host call: the host's limit. Each call adds and removes one carrier layer in one undo
// group, so a shot sampled in one call leaves one entry in Edit > Undo (README: what to time in AE).
const SAMPLE_CHUNK = 2000;

/** Frame numbers a job has on disk, ascending (from Job.frame_infos; the server names the files). */
function writtenFrames(job) {
  return job.frame_infos.map((i) => i.frame).sort((a, b) => a - b);
}

function shortId(id) {
  return String(id || '').slice(0, 8);
}

class PanelController {
  /**
   * @param {{host: function(string, object): Promise<any>, createClient?: function(string, string): GenfxClient,
   *          log?: function(string): void, sampleChunk?: number}} deps
   */
  constructor(deps) {
    this.host = deps.host;
    this.createClient = deps.createClient || ((address, token) => new GenfxClient(address, { token: token }));
    this.log = deps.log || (() => {});
    this.sampleChunk = deps.sampleChunk || SAMPLE_CHUNK;
    this.client = null;
    this.server = '';
    this.info = null;
    this.current = null; // {jobId, watch}
    this.colour = { engine: 'adobe', space: '' }; // the project's colour engine and the frames' space
    this.longCallMs = deps.longCallMs || 120000; // sampling a long shot, importing: longer than a ping
  }

  /** (Re)connects and reads GetServerInfo: version, models (menu order), limits. */
  connect(server, token) {
    if (this.client) this.client.close();
    this.server = server;
    this.client = this.createClient(server, token || '');
    return this.client.getServerInfo().then((info) => {
      this.info = info;
      const loras = info.loras.length ? info.loras.map((l) => l.name).join(', ') : 'none';
      this.log('Connected to ' + server + ' (GenFX ' + info.version + ', models: ' + info.models.map((m) => m.name).join(', ') + '; LoRAs: ' + loras + ')');
      return info;
    });
  }

  /**
   * The LoRA menu for a model ('' = the server's default, its first): the server's LoRAs
   * (ServerInfo.loras), those made for this model first, each {name, label, fits}. A LoRA for another
   * base model stays listed, marked, so the server's refusal is expected rather than a surprise.
   */
  loraChoices(model) {
    if (!this.info) return [];
    const name = model || (this.info.models[0] ? this.info.models[0].name : '');
    const choices = this.info.loras.map((l) => {
      const fits = l.models.indexOf(name) >= 0;
      const label = l.name + ' \u2014 ' + (l.models.length ? 'for ' + l.models.join(', ') : 'for none of these models') + ' \u00b7 ' + l.hash.slice(0, 12);
      return { name: l.name, label: fits ? label : label + ' (not for ' + name + ')', fits: fits };
    });
    return choices.filter((c) => c.fits).concat(choices.filter((c) => !c.fits));
  }

  /** The weight range the server accepts (Limits.max_lora_weight), for the weight fields. */
  maxLoraWeight() {
    return this.info ? this.info.limits.max_lora_weight : 0;
  }

  requireClient() {
    if (!this.client) throw new Error('Not connected: set the server address and press Connect.');
    return this.client;
  }

  /** The active comp; colour: {engine: 'adobe' | 'ocio', space: '' | 'linear_rec709' | 'acescg'}. */
  compInfo(colour) {
    return this.host('compInfo', { colour: colour || this.colour });
  }

  /** Where frames go by default: a `genfx` folder beside the saved .aep, else ~/GenFX. */
  defaultOutputRoot(comp) {
    if (comp && comp.project && comp.project.folder) return path.join(comp.project.folder, 'genfx');
    return path.join(os.homedir(), 'GenFX');
  }

  /** Samples the active comp's camera in chunks; one sample when it does not move. */
  sampleCamera(frameStart, frameEnd, onChunk) {
    const samples = [];
    let first = null;
    const chunk = (from) => {
      const to = Math.min(frameEnd, from + this.sampleChunk - 1);
      return this.host('sampleCamera', { frameStart: from, frameEnd: to }, { timeoutMs: this.longCallMs }).then((r) => {
        if (!first) first = r;
        if (onChunk) onChunk(to - frameStart + 1, frameEnd - frameStart + 1);
        if (r.isDefault) return null; // no camera: one static sample covers the shot
        Array.prototype.push.apply(samples, r.ae.length === r.camera.samples.length ? r.camera.samples : expand(r));
        return to < frameEnd ? chunk(to + 1) : null;
      });
    };
    return chunk(frameStart).then(() => {
      if (first.isDefault) return { track: first.camera, isDefault: true, isStatic: true };
      const isStatic = Camera.isStatic(samples);
      return {
        track: { width: first.camera.width, height: first.camera.height, samples: isStatic ? [samples[0]] : samples },
        isDefault: false,
        isStatic: isStatic,
      };
    });
  }

  /**
   * form: {prompt, negativePrompt, seed, steps, model, loras: [{name, weight}], frameStart, frameEnd,
   *        keyframeStep, width, height, outputRoot, label, colorspace, colourEngine}.
   * Resolves to {request, comp, camera}.
   */
  prepare(form) {
    this.colour = { engine: form.colourEngine || this.colour.engine, space: form.colorspace || '' };
    try {
      Request.loraRefs(form.loras); // a bad row is named before the camera is sampled
    } catch (e) {
      return Promise.reject(e);
    }
    return this.compInfo().then((comp) => {
      const frameStart = form.frameStart === undefined || form.frameStart === '' ? comp.workArea.start : Number(form.frameStart);
      const frameEnd = form.frameEnd === undefined || form.frameEnd === '' ? comp.workArea.end : Number(form.frameEnd);
      return this.sampleCamera(frameStart, frameEnd, form.onSampleProgress).then((camera) => {
        const request = Request.buildGenerateRequest({
          prompt: form.prompt,
          negativePrompt: form.negativePrompt,
          seed: form.seed,
          steps: form.steps,
          guidance: form.guidance,
          model: form.model,
          loras: form.loras,
          frameStart: frameStart,
          frameEnd: frameEnd,
          fps: comp.frameRate,
          keyframeStep: form.keyframeStep,
          width: form.width || comp.width,
          height: form.height || comp.height,
          name: comp.name,
          camera: camera.track,
          clientTag: 'aftereffects:' + (comp.project ? comp.project.name : 'untitled') + '/' + comp.name,
          colorspace: form.colorspace || '',
        });
        return { request: request, comp: comp, camera: camera };
      });
    });
  }

  /**
   * Generate: prepare, submit, follow, download each frame as it lands, import when done.
   * cb: {onEvent(ev), onProgress(fraction, text), onFrame(result), onJob(job)}.
   * Resolves to {job (final), frames: [fetch results], imported (host result or null), warnings}.
   */
  generate(form, callbacks) {
    const cb = callbacks || {};
    const client = this.requireClient();
    if (this.current) return Promise.reject(new Error('A job is already running in this panel (' + shortId(this.current.jobId) + ').'));
    let prepared;
    let dir;
    const fetched = {};
    let fetchChain = Promise.resolve();
    let fetchError = null;
    this.current = { jobId: null, watch: null };
    const progress = (f, text) => cb.onProgress && cb.onProgress(f, text);
    progress(0, 'Sampling camera…');
    const run = this.prepare(Object.assign({}, form, { onSampleProgress: (n, total) => progress(0, 'Sampling camera ' + n + '/' + total) }))
      .then((p) => {
        prepared = p;
        this.log(
          'Camera: ' + (p.camera.isDefault ? "AE's default 50 mm (the comp has no camera)" : p.camera.track.samples.length + ' sample(s)') +
            '; frames ' + p.request.shot.frame_start + '-' + p.request.shot.frame_end
        );
        return client.submitJob(p.request);
      })
      .then((job) => {
        this.current.jobId = job.id;
        if (cb.onJob) cb.onJob(job);
        dir = path.join(form.outputRoot || this.defaultOutputRoot(prepared.comp), job.id);
        this.log('Job ' + job.id + ' queued; frames go to ' + dir);
        const watch = client.watchJob(job.id, (ev) => {
          if (cb.onEvent) cb.onEvent(ev);
          if (ev.kind === 'progress') {
            const p = ev.progress;
            progress(p.fraction, 'Frame ' + p.frame + ' step ' + p.step + '/' + p.steps + ' (' + p.frames_done + '/' + p.frames_total + ' done)');
          } else if (ev.kind === 'state') {
            progress(null, ev.state.state.replace('JOB_STATE_', '').toLowerCase() + (ev.state.message ? ': ' + ev.state.message : ''));
          } else if (ev.kind === 'frame_done') {
            const fd = ev.frame_done;
            // Download while the next frame is generated; one download at a time, in order.
            fetchChain = fetchChain.then(() =>
              client.fetchFrame(job.id, fd.frame, dir, { expectedSha256: fd.sha256, fileName: fd.file_name }).then(
                (r) => {
                  fetched[fd.frame] = r;
                  if (cb.onFrame) cb.onFrame(r);
                },
                (e) => {
                  fetchError = fetchError || e;
                }
              )
            );
          }
        });
        this.current.watch = watch;
        return watch.done;
      })
      .then((job) => fetchChain.then(() => job))
      .then((job) => {
        if (job.state !== 'JOB_STATE_SUCCEEDED') {
          const e = new Error('Job ' + shortId(job.id) + ' ' + job.state.replace('JOB_STATE_', '').toLowerCase() + (job.message ? ': ' + job.message : ''));
          e.job = job;
          throw e;
        }
        // Frames whose events were coalesced or whose download failed: fetch again (resumes .part files).
        const missing = writtenFrames(job).filter((f) => !fetched[f]);
        if (fetchError) this.log('Retrying downloads after: ' + fetchError.message);
        return client
          .fetchJob(job.id, dir, { frames: missing, onFrame: (r, f) => { fetched[f] = r; if (cb.onFrame) cb.onFrame(r); } })
          .then(() => job);
      })
      .then((job) => {
        progress(1, 'Importing…');
        return this.importFrames(job, dir, fetched, { placeAt: 'shot', label: form.label }).then((imported) => ({
          job: job,
          frames: writtenFrames(job).map((f) => fetched[f]),
          imported: imported,
          dir: dir,
        }));
      });
    return run.then(
      (r) => {
        this.current = null;
        progress(1, 'Imported ' + r.imported.layerName);
        return r;
      },
      (e) => {
        this.current = null;
        throw e;
      }
    );
  }

  /** Cancels the panel's running job (between two denoising steps on the server). */
  cancel() {
    const client = this.requireClient();
    if (!this.current || !this.current.jobId) return Promise.reject(new Error('No job is running in this panel.'));
    return client.cancelJob(this.current.jobId);
  }

  /** Jobs on the server, newest first, with what the job list shows. */
  listJobs(limit) {
    return this.requireClient()
      .listJobs([], limit || 50)
      .then((jobs) =>
        jobs.map((j) => ({
          id: j.id,
          state: j.state.replace('JOB_STATE_', ''),
          prompt: j.request && j.request.prompt,
          frames: j.request && j.request.shot ? j.request.shot.frame_start + '-' + j.request.shot.frame_end : '',
          framesDone: j.frames_done,
          framesTotal: j.frames_total,
          clientTag: j.request ? j.request.client_tag : '',
          createdAt: j.created_at,
          importable: isTerminal(j.state) && j.frame_infos.length > 0,
          job: j,
        }))
      );
  }

  /**
   * Downloads a finished job (any client's, e.g. Houdini's) and imports it.
   * options: {outputRoot, placeAt: 'shot' (the job's frame numbers) | 'current' (the comp's current
   *           time) | a display frame number, label}.
   */
  importJob(jobId, options) {
    const opts = options || {};
    const client = this.requireClient();
    return Promise.all([client.getJob(jobId), this.compInfo()]).then((both) => {
      const job = both[0];
      const comp = both[1];
      if (!isTerminal(job.state)) throw new Error('Job ' + shortId(jobId) + ' is still ' + job.state.replace('JOB_STATE_', '').toLowerCase());
      if (!job.frame_infos.length) throw new Error('Job ' + shortId(jobId) + ' has no frames');
      const dir = path.join(opts.outputRoot || this.defaultOutputRoot(comp), job.id);
      const fetched = {};
      return client
        .fetchJob(job.id, dir, { onFrame: (r, f) => { fetched[f] = r; } })
        .then(() => this.importFrames(job, dir, fetched, { placeAt: opts.placeAt, label: opts.label, comp: comp }));
    });
  }

  importFrames(job, dir, fetched, options) {
    const opts = options || {};
    const frames = writtenFrames(job);
    const first = fetched[frames[0]];
    const compP = opts.comp ? Promise.resolve(opts.comp) : this.compInfo();
    return compP.then((comp) => {
      let placeAt = frames[0];
      if (opts.placeAt === 'current') placeAt = comp.currentFrame;
      else if (typeof opts.placeAt === 'number') placeAt = opts.placeAt;
      const req = job.request || {};
      return this.host('importSequence', {
        firstFile: first.path,
        frameStart: frames[0],
        frameEnd: frames[frames.length - 1],
        placeAtFrame: placeAt,
        prompt: req.prompt,
        jobId: job.id,
        seed: job.seed,
        model: req.model,
        modelHash: job.model_hash,
        loras: (req.loras || []).map((l) => ({ name: l.name, weight: l.weight })),
        server: this.server,
        label: opts.label,
        // The OCIO hint names the space the frames were written in (also for another client's job).
        colour: { engine: this.colour.engine, space: spaceOf(req) },
      }, { timeoutMs: this.longCallMs }).then((r) => {
        this.log('Imported ' + r.layerName + ' (' + frames.length + ' frames from ' + dir + ')');
        (r.warnings || []).forEach((w) => this.log('Warning: ' + w));
        return r;
      });
    });
  }

  close() {
    if (this.current && this.current.watch) this.current.watch.cancel();
    if (this.client) this.client.close();
    this.client = null;
  }
}

/** The SDK's colour space name of a request's frames ('linear_rec709' when unset). */
function spaceOf(request) {
  const cs = request && request.output && request.output.colorspace;
  return cs === 'COLOR_SPACE_ACESCG' ? 'acescg' : 'linear_rec709';
}

// A chunk that came back with one sample (static within the chunk) but several frames: one per frame.
function expand(r) {
  return r.ae.map((a) => Object.assign({}, r.camera.samples[0], { frame: a.frame }));
}

module.exports = { PanelController, SAMPLE_CHUNK };
