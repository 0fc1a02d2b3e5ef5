'use strict';
// Starts a real GenFX server (Python, built-in tiny model) as a subprocess on a free loopback port,
// the way genfx/local_server.py does: `python -m inference_server serve --host 127.0.0.1 --port 0
// --data-dir DIR` and wait for the `GENFX_READY port=N` line on stdout.
// The interpreter is <repo>/.venv/bin/python (what `make setup` builds) unless GENFX_PYTHON says otherwise.
const fs = require('fs');
const os = require('os');
const path = require('path');
const childProcess = require('child_process');

const REPO = path.resolve(__dirname, '..', '..', '..');
const READY = /^GENFX_READY port=(\d+)\s*$/m;

function pythonPath() {
  if (process.env.GENFX_PYTHON) return process.env.GENFX_PYTHON;
  const candidates = [path.join(REPO, '.venv', 'bin', 'python'), path.join(REPO, '.venv', 'Scripts', 'python.exe')];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(
    'No Python for the GenFX server: run `make setup` at the repo root (creates .venv) or set GENFX_PYTHON'
  );
}

/** options: {token?, dataDir?, extraArgs?, timeoutMs?}. Resolves to {address, port, dataDir, logPath, proc, stop()}. */
function startServer(options) {
  const opts = options || {};
  const dataDir = opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'genfx-ae-server-'));
  const logPath = path.join(dataDir, 'server.log');
  const args = ['-m', 'inference_server', 'serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir];
  if (opts.token) args.push('--token', opts.token);
  if (opts.extraArgs) Array.prototype.push.apply(args, opts.extraArgs); // e.g. ['--models-config', FILE]
  const log = fs.openSync(logPath, 'a');
  const env = Object.assign({}, process.env);
  delete env.GENFX_TOKEN;
  const proc = childProcess.spawn(pythonPath(), args, { cwd: REPO, env: env, stdio: ['ignore', 'pipe', log] });
  fs.closeSync(log);
  const timeoutMs = opts.timeoutMs || 180000;
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('GenFX server did not start in ' + timeoutMs + ' ms:\n' + tail(logPath)));
    }, timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d.toString();
      const m = READY.exec(out);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          address: '127.0.0.1:' + port,
          port: port,
          dataDir: dataDir,
          logPath: logPath,
          proc: proc,
          stop: () => stop(proc),
        });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error('GenFX server exited with ' + code + ' before it was ready:\n' + tail(logPath)));
    });
  });
}

function tail(file) {
  try {
    return fs.readFileSync(file, 'utf8').slice(-3000);
  } catch (e) {
    return '(no log)';
  }
}

function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      resolve(proc.exitCode);
      return;
    }
    const killer = setTimeout(() => proc.kill('SIGKILL'), 60000);
    proc.once('exit', (code) => {
      clearTimeout(killer);
      resolve(code);
    });
    proc.kill('SIGTERM');
  });
}

module.exports = { startServer, pythonPath, REPO };
