'use strict';
// Just enough of a browser page to run client/cep.js + client/panel.js in Node: the elements of
// client/index.html by id, createElement, events, localStorage, and CEP's window.__adobe_cep__
// (evalScript goes to the fake AE, asynchronously as in CEP). Mixed context: window.require is Node's.
const fs = require('fs');
const path = require('path');
const vm = require('vm');

class FakeElement {
  constructor(tag, id) {
    this.tagName = tag.toUpperCase();
    this.id = id || '';
    this.children = [];
    this.listeners = {};
    this._text = '';
    this.value = '';
    this.className = '';
    this.title = '';
    this.disabled = false;
    this.placeholder = '';
    this.scrollTop = 0;
    this.scrollHeight = 0;
  }
  get textContent() {
    return this._text + this.children.map((c) => c.textContent).join('');
  }
  set textContent(t) {
    this._text = String(t);
    this.children = [];
  }
  appendChild(child) {
    this.children.push(child);
    if (this.tagName === 'SELECT' && this.children.length === 1) this.value = child.value;
    return child;
  }
  removeChild(child) {
    const i = this.children.indexOf(child);
    if (i < 0) throw new Error('NotFoundError: the node is not a child of this node');
    this.children.splice(i, 1);
    return child;
  }
  addEventListener(type, fn) {
    (this.listeners[type] = this.listeners[type] || []).push(fn);
  }
  dispatch(type) {
    (this.listeners[type] || []).forEach((fn) => fn({ type: type, target: this }));
  }
  click() {
    if (!this.disabled) this.dispatch('click');
  }
  /** Depth-first search by predicate (for buttons inside table rows). */
  find(pred) {
    for (const c of this.children) {
      if (pred(c)) return c;
      const d = c.find(pred);
      if (d) return d;
    }
    return null;
  }
}

function createPage(options) {
  const html = fs.readFileSync(path.join(options.root, 'client', 'index.html'), 'utf8');
  const byId = {};
  html.replace(/<(\w+)\b[^>]*\bid="([^"]+)"/g, (_, tag, id) => {
    byId[id] = new FakeElement(tag, id);
  });
  const store = new Map(Object.entries(options.localStorage || {}));
  const window = {
    document: {
      readyState: 'complete',
      getElementById: (id) => byId[id] || null,
      createElement: (tag) => new FakeElement(tag),
      addEventListener: () => {},
    },
    localStorage: {
      getItem: (k) => (store.has(k) ? store.get(k) : null),
      setItem: (k, v) => store.set(k, String(v)),
    },
    location: { href: 'file://' + path.join(options.root, 'client', 'index.html') },
    __adobe_cep__: {
      getSystemPath: (kind) => (kind === 'extension' ? 'file://' + encodeURI(options.root) : ''),
      evalScript: (script, cb) => setImmediate(() => cb(options.evalScript(script))),
    },
    require: require,
    addEventListener: () => {},
    URL: URL,
    JSON: JSON,
    Date: Date,
    Number: Number,
    String: String,
    setTimeout: setTimeout,
    console: console,
  };
  window.window = window;
  const context = vm.createContext(window);
  for (const f of ['cep.js', 'panel.js']) {
    const p = path.join(options.root, 'client', f);
    vm.runInContext(fs.readFileSync(p, 'utf8'), context, { filename: p });
  }
  return { byId: byId, store: store, window: window };
}

function waitFor(pred, timeoutMs, what) {
  const deadline = Date.now() + (timeoutMs || 60000);
  return new Promise((resolve, reject) => {
    const tick = () => {
      let v;
      try {
        v = pred();
      } catch (e) {
        v = false;
      }
      if (v) resolve(v);
      else if (Date.now() > deadline) reject(new Error('timed out waiting for ' + (what || 'a condition')));
      else setTimeout(tick, 25);
    };
    tick();
  });
}

module.exports = { createPage, waitFor, FakeElement };
