/*
 * The panel's view of CEP: evalScript into After Effects, the extension folder, and Node's require.
 * Plain script (Chromium 88 in CEP 11, 99 in CEP 12). Adobe's CSInterface.js does the same through
 * window.__adobe_cep__; this keeps only what the panel uses.
 */
(function (global) {
  'use strict';
  var cep = global.__adobe_cep__;

  function extensionRoot() {
    if (cep) {
      var p = decodeURI(cep.getSystemPath('extension'));
      // "file:///C:/..." on Windows, "file:///Users/..." on macOS (CSInterface strips the same way).
      if (/^file:\/\/\/[A-Za-z]:/.test(p)) return p.replace(/^file:\/\/\//, '');
      return p.replace(/^file:\/\//, '');
    }
    // Outside AE (a browser preview): the folder above client/.
    return decodeURI(new URL('..', global.location.href).pathname).replace(/\/$/, '');
  }

  function evalScript(script, callback) {
    if (!cep) {
      callback(JSON.stringify({ ok: false, error: 'Not running inside After Effects' }));
      return;
    }
    cep.evalScript(script, callback);
  }

  // --mixed-context: Node's require is a global; cep_node.require is the documented alias.
  var nodeRequire = (global.cep_node && global.cep_node.require) || global.require || null;

  global.GenfxCep = {
    inHost: !!cep,
    extensionRoot: extensionRoot,
    evalScript: evalScript,
    nodeRequire: nodeRequire
  };
})(window);
