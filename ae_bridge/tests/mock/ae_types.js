'use strict';
// The After Effects scripting surface as types-for-adobe declares it (node_modules/types-for-adobe,
// AfterEffects/24.0/index.d.ts, the oldest AE this extension supports), read at test time: classes with
// their base class and members (read-only or not), and enums with their real values. The fake DOM
// (ae_dom.js) takes its enum values from here and guards every object it hands to the host script with
// it: a member the .d.ts does not declare, or an assignment to a read-only one, fails the test.
const fs = require('fs');
const path = require('path');

const DTS = path.resolve(__dirname, '..', '..', 'node_modules', 'types-for-adobe', 'AfterEffects', '24.0', 'index.d.ts');

function parse(text) {
  const classes = {};
  const enums = {};
  const lines = text.split('\n');
  let current = null;
  let currentEnum = null;
  for (const line of lines) {
    const cls = /^declare class (\w+)(?:<[^{]*?>)?(?: extends (\w+)(?:<[^{]*>)?)? \{(\})?/.exec(line);
    if (cls) {
      current = { name: cls[1], base: cls[2] || null, members: {} };
      classes[cls[1]] = current;
      if (cls[3]) current = null;
      continue;
    }
    const en = /^declare (?:const )?enum (\w+) \{/.exec(line);
    if (en) {
      currentEnum = {};
      enums[en[1]] = currentEnum;
      continue;
    }
    if (/^\}/.test(line)) {
      current = null;
      currentEnum = null;
      continue;
    }
    if (currentEnum) {
      const v = /^\s+(\w+) = (-?\d+),?/.exec(line);
      if (v) currentEnum[v[1]] = Number(v[2]);
      continue;
    }
    if (!current) continue;
    const m = /^ {2}(readonly )?(\w+)(\?)?(:|\(|<)/.exec(line);
    if (m && m[2] !== 'constructor') {
      const prev = current.members[m[2]];
      current.members[m[2]] = { readonly: Boolean(m[1]), method: m[4] !== ':' || Boolean(prev && prev.method) };
    }
  }
  return { classes, enums };
}

let cached = null;
function surface() {
  if (!cached) cached = parse(fs.readFileSync(DTS, 'utf8'));
  return cached;
}

/** The declaration of `member` on `className` or a base class, or null. */
function member(className, name) {
  const { classes } = surface();
  for (let c = classes[className]; c; c = classes[c.base]) {
    if (Object.prototype.hasOwnProperty.call(c.members, name)) return Object.assign({ owner: c.name }, c.members[name]);
  }
  return null;
}

module.exports = { DTS, parse, surface, member };
