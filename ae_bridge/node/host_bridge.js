'use strict';
// The panel <-> ExtendScript boundary in one place: the script text sent through
// CSInterface.evalScript and the parsing of what comes back. Used by the panel (client/cep.js) and
// by the tests, which run the same script text in the fake AE of tests/mock/ae_dom.js.

/** JSON text as an ES3 string literal: JSON may hold U+2028/U+2029 raw, ES3 string literals may not. */
function es3StringLiteral(text) {
  return JSON.stringify(String(text)).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Script that calls GenfxHost.<name>(args) and returns the JSON envelope. */
function buildHostCall(name, args) {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error('bad host function name: ' + name);
  const argsJson = JSON.stringify(args === undefined ? {} : args);
  return 'GenfxHost.call(' + es3StringLiteral(name) + ', ' + es3StringLiteral(argsJson) + ')';
}

/** Script that loads the host modules from the extension folder (host/index.jsx: genfxLoad). */
function buildLoadCall(extensionRoot) {
  return 'genfxLoad(' + es3StringLiteral(extensionRoot) + ')';
}

/** The host's envelope -> value, or an Error with the host's message (and line). */
function parseHostResult(text) {
  let envelope;
  try {
    envelope = JSON.parse(text);
  } catch (e) {
    // CSInterface answers the bare string "EvalScript error." when the script itself failed.
    throw new Error('After Effects did not answer the panel (' + String(text).slice(0, 200) + ')');
  }
  if (!envelope || envelope.ok !== true) {
    const err = new Error((envelope && envelope.error) || 'host call failed');
    if (envelope && envelope.line) err.line = envelope.line;
    throw err;
  }
  return envelope.value;
}

const HOST_TIMEOUT_MS = 30000;

/**
 * A host(name, args, {timeoutMs}) -> Promise function over any evalScript(script, callback)
 * implementation (CSInterface in the panel, the fake AE in tests). evalScript waits while After Effects
 * shows a modal dialog (or is busy rendering), so each call gives up after timeoutMs (options.timeoutMs,
 * default 30 s) with a message that says so; an answer that comes later is dropped.
 */
function makeHost(evalScript, options) {
  const defaultTimeout = (options && options.timeoutMs) || HOST_TIMEOUT_MS;
  return function host(name, args, callOptions) {
    const timeoutMs = (callOptions && callOptions.timeoutMs) || defaultTimeout;
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(
          new Error(
            'After Effects did not answer ' + name + ' within ' + Math.round(timeoutMs / 1000) +
              ' s: close any open dialog in After Effects (or wait for a render to finish), then try again.'
          )
        );
      }, timeoutMs);
      evalScript(buildHostCall(name, args), (text) => {
        if (settled) return; // too late: the panel has moved on
        settled = true;
        clearTimeout(timer);
        try {
          resolve(parseHostResult(text));
        } catch (e) {
          reject(e);
        }
      });
    });
  };
}

module.exports = { es3StringLiteral, buildHostCall, buildLoadCall, parseHostResult, makeHost, HOST_TIMEOUT_MS };
