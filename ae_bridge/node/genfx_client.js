'use strict';
// GenFX gRPC client for the After Effects panel: @grpc/grpc-js + @grpc/proto-loader, loading the
// packaged copy of the wire contract (ae_bridge/protos/genfx/v1/genfx.proto).
//
// Runs on CEP's Node (15.9 in CEP 11 / AE 24, 17.7 in CEP 12 / AE 25+) as well as on current Node:
// CommonJS, callbacks and promises only; no `??=`, no top-level await, no fetch, no structuredClone,
// no `node:` imports, no AbortController. tests/compat.test.js enforces this; scripts/cep_node_check.sh
// runs the real thing under Node 15 and 17 binaries.
//
// Message objects use the proto field names (keepCase); 64-bit integers arrive as decimal strings
// (longs: String) and enums as their names (enums: String), e.g. job.state === 'JOB_STATE_SUCCEEDED'.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', 'protos');
const PROTO_FILE = 'genfx/v1/genfx.proto';
const DEFAULT_SERVER = '127.0.0.1:50051';
const TERMINAL_STATES = ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'];
// Codes worth reattaching a watch for (the server restarted, the network blinked).
const RETRYABLE = [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.INTERNAL, grpc.status.UNKNOWN];

let protoCache = null;

/** The genfx.v1 package (service constructors and message types), loaded once. */
function loadProto() {
  if (!protoCache) {
    const definition = protoLoader.loadSync(PROTO_FILE, {
      includeDirs: [PROTO_ROOT],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    protoCache = grpc.loadPackageDefinition(definition).genfx.v1;
  }
  return protoCache;
}

/** A name usable as is inside a folder: no separator, not hidden, not '.' or '..' (like genfx.frames.local_path). */
function isPlainFileName(name) {
  return typeof name === 'string' && name.length > 0 && name.charAt(0) !== '.' && !/[\/\\\0]/.test(name);
}

function isTerminal(state) {
  return TERMINAL_STATES.indexOf(state) >= 0;
}

/** An Error with the gRPC status code name in front: "UNAVAILABLE: failed to connect ...". */
function describeError(err) {
  if (err && typeof err.code === 'number') {
    const name = Object.keys(grpc.status).filter((k) => grpc.status[k] === err.code)[0] || String(err.code);
    const e = new Error(name + ': ' + (err.details || err.message));
    e.code = err.code;
    e.codeName = name;
    return e;
  }
  return err instanceof Error ? err : new Error(String(err));
}

function sha256File(file) {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    const stream = fs.createReadStream(file);
    stream.on('error', reject);
    stream.on('data', (d) => hash.update(d));
    stream.on('end', () => resolve(hash.digest('hex')));
  });
}

function mkdirp(dir) {
  fs.mkdirSync(dir, { recursive: true });
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class GenfxClient {
  /**
   * @param {string} [address] host:port (default 127.0.0.1:50051)
   * @param {{token?: string, timeoutMs?: number, rootCerts?: Buffer}} [options]
   */
  constructor(address, options) {
    const opts = options || {};
    this.address = address || DEFAULT_SERVER;
    this.token = opts.token || '';
    this.timeoutMs = opts.timeoutMs || 30000;
    const creds = opts.rootCerts ? grpc.credentials.createSsl(opts.rootCerts) : grpc.credentials.createInsecure();
    const pkg = loadProto();
    this.stub = new pkg.GenFX(this.address, creds, {
      'grpc.max_receive_message_length': 8 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30000,
      'grpc.keepalive_permit_without_calls': 1,
    });
  }

  close() {
    this.stub.close();
  }

  metadata() {
    const md = new grpc.Metadata();
    if (this.token) md.add('authorization', 'Bearer ' + this.token);
    return md;
  }

  unary(method, request, timeoutMs) {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + (timeoutMs || this.timeoutMs));
      this.stub[method](request, this.metadata(), { deadline: deadline }, (err, response) => {
        if (err) reject(describeError(err));
        else resolve(response);
      });
    });
  }

  /** Version, models (menu order, first = default), devices, limits, auth_required. */
  getServerInfo() {
    return this.unary('GetServerInfo', {});
  }

  /** Validates and queues a GenerateRequest (see shared/request.js); resolves to the Job. */
  submitJob(request) {
    return this.unary('SubmitJob', request);
  }

  getJob(jobId) {
    return this.unary('GetJob', { job_id: jobId });
  }

  /**
   * The newest `limit` jobs (0 = 100), newest first, over as many ListJobs pages as that takes.
   * states: e.g. ['JOB_STATE_SUCCEEDED']. Requests come abridged (no camera samples or per-frame
   * passes: job.request_abridged); getJob has the whole request. pageSize (default: all at once)
   * bounds each ListJobs call.
   */
  listJobs(states, limit, pageSize) {
    const wanted = limit || 100;
    const jobs = [];
    const self = this;
    function page(token) {
      const size = Math.min(wanted - jobs.length, pageSize || 1000, 1000);
      const request = { states: states || [], limit: size, page_token: token };
      return self.unary('ListJobs', request).then((r) => {
        Array.prototype.push.apply(jobs, r.jobs);
        if (jobs.length >= wanted || !r.next_page_token) return jobs.slice(0, wanted);
        return page(r.next_page_token);
      });
    }
    return page('');
  }

  /** Deletes a job that has ended, with its frames on the server; resolves to {job_id, frames_deleted}. */
  deleteJob(jobId) {
    return this.unary('DeleteJob', { job_id: jobId });
  }

  cancelJob(jobId) {
    return this.unary('CancelJob', { job_id: jobId });
  }

  /**
   * Streams a job's events to onEvent(event) until it ends; reattaches (WatchJob from the next
   * sequence number) when the connection drops. Returns {done, cancel}: done resolves to the final
   * Job; cancel() stops watching (it never cancels the job: cancelJob does).
   * Event: {seq, job_id, time, kind: 'state'|'progress'|'frame_done', state|progress|frame_done}.
   */
  watchJob(jobId, onEvent, options) {
    const opts = options || {};
    const maxRetries = opts.maxRetries === undefined ? 8 : opts.maxRetries;
    let lastSeq = Number(opts.fromSeq || 1) - 1;
    let lastProgress = '';
    let call = null;
    let stopped = false;
    let retries = 0;
    const self = this;

    const done = new Promise((resolve, reject) => {
      function finish() {
        self.getJob(jobId).then(resolve, reject);
      }
      function attach() {
        if (stopped) return;
        let ended = false;
        call = self.stub.WatchJob({ job_id: jobId, from_seq: String(lastSeq + 1) }, self.metadata());
        call.on('data', (ev) => {
          retries = 0;
          const seq = Number(ev.seq);
          // Stored events (state, frame_done) have their own seq: one already seen was replayed across a
          // reattach. Live progress is not stored; it carries the seq of the last stored event, so it is
          // never dropped for that (only the same step twice).
          if (ev.kind === 'progress') {
            const key = seq + ':' + ev.progress.frame + ':' + ev.progress.step;
            if (key === lastProgress) return;
            lastProgress = key;
          } else {
            if (seq <= lastSeq) return;
            lastSeq = seq;
          }
          try {
            if (onEvent) onEvent(ev);
          } catch (e) {
            // A listener bug must not kill the stream; surface it in the panel log instead.
            if (opts.onListenerError) opts.onListenerError(e);
          }
        });
        call.on('error', (err) => {
          if (ended || stopped) return;
          ended = true;
          if (err.code === grpc.status.CANCELLED && stopped) return;
          if (RETRYABLE.indexOf(err.code) >= 0 && retries < maxRetries) {
            retries += 1;
            delay(Math.min(5000, 250 * Math.pow(2, retries))).then(attach);
          } else {
            reject(describeError(err));
          }
        });
        call.on('end', () => {
          if (ended || stopped) return;
          ended = true;
          // The server ends the stream when the job ends; if it has not, reattach.
          self.getJob(jobId).then((job) => {
            if (isTerminal(job.state)) resolve(job);
            else if (retries++ < maxRetries) delay(250).then(attach);
            else reject(new Error('watch ended before job ' + jobId + ' finished'));
          }, reject);
        });
      }
      attach();
      if (opts.onStopped) opts.onStopped(finish);
    });

    return {
      done: done,
      cancel: () => {
        stopped = true;
        if (call) call.cancel();
      },
      lastSeq: () => lastSeq,
    };
  }

  /** SubmitJob + watchJob. Resolves to {job (as submitted), done (promise of the final Job), cancel}. */
  generate(request, onEvent, options) {
    return this.submitJob(request).then((job) => {
      const w = this.watchJob(job.id, onEvent, options);
      return { job: job, done: w.done, cancel: w.cancel };
    });
  }

  /**
   * Downloads one frame into dir with FetchFrame: chunked, resumable (a `.part` file keeps what
   * arrived; the next call resumes from its size), sha256-checked against the server's hash (and
   * expectedSha256 when given, e.g. from a FrameDone event). The file appears under its final name
   * only once it is complete and verified. Resolves to {path, fileName, size, sha256, resumedFrom,
   * alreadyThere}. With opts.fileName and opts.expectedSha256 (a FrameInfo's), a file already in dir
   * with that name and hash is used as it is: nothing is downloaded or renamed (After Effects may hold
   * it open, and on Windows a file in use cannot be replaced).
   */
  fetchFrame(jobId, frame, dir, options) {
    const opts = options || {};
    mkdirp(dir);
    if (opts.fileName && opts.expectedSha256 && isPlainFileName(opts.fileName)) {
      const existing = path.join(dir, opts.fileName);
      if (fs.existsSync(existing)) {
        return sha256File(existing).then((digest) => {
          if (digest === opts.expectedSha256) {
            const size = fs.statSync(existing).size;
            return { path: existing, fileName: opts.fileName, size: size, sha256: digest, resumedFrom: 0, alreadyThere: true };
          }
          return this.fetchFrame(jobId, frame, dir, Object.assign({}, opts, { fileName: null }));
        });
      }
    }
    const part = path.join(dir, '.genfx-' + jobId + '-' + frame + '.part');
    let offset = 0;
    try {
      offset = fs.statSync(part).size;
    } catch (e) {
      offset = 0;
    }
    const attempt = (from) =>
      new Promise((resolve, reject) => {
        const fd = fs.openSync(part, from > 0 ? 'r+' : 'w');
        let pos = from;
        let meta = null;
        let failed = false;
        const request = { job_id: jobId, frame: frame, offset: String(from), chunk_size: opts.chunkSize || 0 };
        const call = this.stub.FetchFrame(request, this.metadata());
        const fail = (err) => {
          if (failed) return;
          failed = true;
          call.cancel();
          fs.closeSync(fd);
          reject(err);
        };
        let writing = false;
        let ended = false;
        const maybeFinish = () => {
          if (failed || writing || !ended) return;
          fs.closeSync(fd);
          if (!meta) reject(new Error('FetchFrame: stream ended before the last chunk (' + pos + ' bytes)'));
          else resolve({ meta: meta, size: pos });
        };
        call.on('data', (chunk) => {
          if (failed) return;
          if (Number(chunk.offset) !== pos) {
            fail(new Error('FetchFrame: chunk at offset ' + chunk.offset + ', expected ' + pos));
            return;
          }
          // Back-pressure: no more chunks until this one is on disk.
          writing = true;
          call.pause();
          fs.write(fd, chunk.data, 0, chunk.data.length, pos, (err) => {
            writing = false;
            if (err) {
              fail(err);
              return;
            }
            pos += chunk.data.length;
            if (opts.onProgress) opts.onProgress(pos, Number(chunk.total_size));
            if (chunk.last) meta = chunk;
            call.resume();
            maybeFinish();
          });
        });
        call.on('error', (err) => fail(describeError(err)));
        call.on('end', () => {
          ended = true;
          maybeFinish();
        });
      });

    const verify = (result, from) => {
      const meta = result.meta;
      // The server names the file; it only has to be a plain file name, never a path out of dir.
      const fileName = meta.file_name;
      if (!isPlainFileName(fileName)) throw new Error('FetchFrame: refusing file name ' + JSON.stringify(fileName));
      if (result.size !== Number(meta.total_size)) {
        throw new Error('FetchFrame: got ' + result.size + ' bytes, server says ' + meta.total_size);
      }
      return sha256File(part).then((digest) => {
        const expected = [meta.sha256, opts.expectedSha256].filter(Boolean);
        if (!meta.sha256) throw new Error('FetchFrame: the last chunk carried no sha256');
        for (const e of expected) {
          if (digest !== e) {
            fs.unlinkSync(part);
            throw new Error('FetchFrame: sha256 mismatch for ' + fileName + ' (got ' + digest + ', expected ' + e + ')');
          }
        }
        const dest = path.join(dir, fileName);
        try {
          fs.renameSync(part, dest);
        } catch (e) {
          if (['EPERM', 'EACCES', 'EBUSY'].indexOf(e.code) < 0) throw e;
          throw new Error(
            'Cannot replace ' + dest + ' (' + e.code + '): it is in use, most likely by the layer that shows it' +
              ' in After Effects. Remove that footage or import into another output folder, then try again.'
          );
        }
        return { path: dest, fileName: fileName, size: result.size, sha256: digest, resumedFrom: from, alreadyThere: false };
      });
    };

    return attempt(offset)
      .catch((err) => {
        // A stale .part longer than the file (or from other bytes): start over once.
        if (offset > 0 && err.code === grpc.status.INVALID_ARGUMENT) {
          fs.unlinkSync(part);
          offset = 0;
          return attempt(0);
        }
        throw err;
      })
      .then((result) => verify(result, offset));
  }

  /**
   * Downloads every frame a job has written (job.frame_infos; opts.frames picks some of them) into dir,
   * under the names the server gave them, each checked against the sha256 the server recorded.
   * Resolves to the list of fetchFrame results.
   */
  fetchJob(jobId, dir, options) {
    const opts = options || {};
    return this.getJob(jobId).then((job) => {
      const infos = job.frame_infos.filter((i) => !opts.frames || opts.frames.indexOf(i.frame) >= 0);
      const results = [];
      const next = () => {
        if (!infos.length) return Promise.resolve(results);
        const info = infos.shift();
        const frame = info.frame;
        return this.fetchFrame(jobId, frame, dir, { expectedSha256: info.sha256, fileName: info.file_name }).then((r) => {
          results.push(r);
          if (opts.onFrame) opts.onFrame(r, frame, job);
          return next();
        });
      };
      return next();
    });
  }
}

module.exports = {
  GenfxClient,
  loadProto,
  isTerminal,
  isPlainFileName,
  sha256File,
  describeError,
  TERMINAL_STATES,
  PROTO_ROOT,
  PROTO_FILE,
  DEFAULT_SERVER,
  grpc,
};
