'use strict';
// Loads the ES3 scripts in shared/ (written for ExtendScript, each defining ONE global) into Node
// without touching Node's global object: the file runs inside a function in this realm, so the
// arrays and objects it returns are ordinary ones. Works on CEP's Node 15.9 / 17.7.
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const ROOT = path.resolve(__dirname, '..');
const cache = {};

function loadEs3(relPath, globalName) {
  const file = path.join(ROOT, relPath);
  const key = file + '#' + globalName;
  if (!cache[key]) {
    const source = fs.readFileSync(file, 'utf8');
    const wrapped = '(function () {\n' + source + '\n;return ' + globalName + ';\n})()';
    cache[key] = vm.runInThisContext(wrapped, { filename: file });
  }
  return cache[key];
}

module.exports = {
  loadEs3,
  camera: () => loadEs3('shared/camera.js', 'GenfxCamera'),
  request: () => loadEs3('shared/request.js', 'GenfxRequest'),
  json: () => loadEs3('host/lib/json.js', 'GenfxJSON'),
  ROOT,
};
