'use strict';
// CSXS/manifest.xml against the rules of Adobe's manifest schema, ExtensionManifest_v_7_0.xsd
// (Adobe-CEP/CEP-Resources, CEP_8.x/ExtensionManifest_v_7_0.xsd, the newest schema Adobe publishes).
// No registry package ships that file and nothing may be fetched at test time, so the rules this test
// checks are written out below, element by element, as the XSD states them: the order and counts of
// child elements (xs:sequence, minOccurs/maxOccurs), required attributes, the ID / Version /
// RangedVersion / RelativePath patterns and the enumerations. One documented difference: the XSD fixes
// the root Version at "7.0", while Adobe's own CEP 11 and 12 samples declare "11.0" / "12.0".
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');

const MANIFEST = path.resolve(__dirname, '..', 'CSXS', 'manifest.xml');

// ---- the XSD's simple types ----
const V = '\\d{1,9}(\\.\\d{1,9}(\\.\\d{1,9}(\\.(\\w|_|-)+)?)?)?';
const TYPES = {
  ID: (v) => /^[A-Za-z0-9._\-]+$/.test(v),
  Version: (v) => new RegExp('^' + V + '$').test(v),
  RangedVersion: (v) => new RegExp('^(' + V + ')$|^[(\\[]' + V + ',?' + V + '[)\\]]$').test(v),
  RequiredString: (v) => v.length >= 1,
  RelativePathLoc: (v) => /^\.\/.+/.test(v) || /^%[^%].*/.test(v),
  SizeLoc: (v) => /^\d+$/.test(v) || /^%[^%].*/.test(v),
  Any: () => true,
};
const enumOf = (values) => (v) => values.indexOf(v) >= 0;

// ---- the XSD's elements: attrs {name: [type, required]}, seq [[child, min, max]], text type ----
const size = { seq: [['Height', 0, 1], ['Width', 0, 1]], children: { Height: { text: 'SizeLoc' }, Width: { text: 'SizeLoc' } } };
const SCHEMA = {
  ExtensionManifest: {
    attrs: {
      Version: [enumOf(['7.0', '11.0', '12.0']), true],
      ExtensionBundleId: ['ID', true],
      ExtensionBundleVersion: ['Version', true],
      ExtensionBundleName: ['RequiredString', false],
    },
    seq: [['Author', 0, 1], ['Contact', 0, 1], ['Legal', 0, 1], ['Abstract', 0, 1], ['ExtensionList', 1, 1], ['ExecutionEnvironment', 1, 1], ['DispatchInfoList', 1, 1]],
    children: {
      Author: { text: 'Any' },
      Contact: { text: 'Any', attrs: { mailto: ['RequiredString', false] } },
      Legal: { text: 'Any', attrs: { href: ['Any', false] } },
      Abstract: { text: 'Any', attrs: { href: ['Any', false] } },
      ExtensionList: {
        seq: [['Extension', 0, Infinity]],
        children: { Extension: { attrs: { Id: ['ID', true], Version: ['Version', false] } } },
      },
      ExecutionEnvironment: {
        seq: [['HostList', 0, 1], ['LocaleList', 0, 1], ['RequiredRuntimeList', 0, 1]],
        children: {
          HostList: { seq: [['Host', 1, Infinity]], children: { Host: { attrs: { Name: ['RequiredString', true], Version: ['RangedVersion', true] } } } },
          LocaleList: { seq: [['Locale', 1, Infinity]], children: { Locale: { attrs: { Code: ['RequiredString', true] } } } },
          RequiredRuntimeList: {
            seq: [['RequiredRuntime', 0, Infinity]],
            children: { RequiredRuntime: { attrs: { Name: [enumOf(['CSXS']), true], Version: ['RangedVersion', true] } } },
          },
        },
      },
      DispatchInfoList: {
        seq: [['Extension', 0, Infinity]],
        children: {
          Extension: {
            attrs: { Id: ['ID', true] },
            seq: [['HostList', 0, 1], ['DispatchInfo', 1, Infinity], ['DependencyList', 0, 1]],
            children: {
              HostList: { seq: [['Host', 1, Infinity]], children: { Host: { attrs: { Name: ['RequiredString', true] } } } },
              DependencyList: {
                seq: [['Dependency', 1, Infinity]],
                children: { Dependency: { attrs: { Id: ['ID', true], Version: ['Any', false] } } },
              },
              DispatchInfo: {
                attrs: { Host: ['RequiredString', false] },
                seq: [['Resources', 0, 1], ['Lifecycle', 0, 1], ['UI', 0, 1], ['ExtensionData', 0, 1]],
                children: {
                  Resources: {
                    seq: [['MainPath', 0, 1], ['ScriptPath', 0, 1], ['CEFCommandLine', 0, 1]],
                    children: {
                      MainPath: { text: 'RelativePathLoc' },
                      ScriptPath: { text: 'RelativePathLoc', attrs: { Engine: ['RequiredString', false] } },
                      CEFCommandLine: { seq: [['Parameter', 1, Infinity]], children: { Parameter: { text: 'Any' } } },
                    },
                  },
                  Lifecycle: {
                    seq: [['AutoVisible', 0, 1], ['StartOn', 0, 1]],
                    children: {
                      AutoVisible: { text: (v) => v === 'true' || v === 'false' || /^%[^%].*/.test(v) },
                      StartOn: { seq: [['Event', 0, Infinity]], children: { Event: { text: 'RequiredString' } } },
                    },
                  },
                  UI: {
                    seq: [['Type', 0, 1], ['Menu', 0, 1], ['Geometry', 0, 1], ['Icons', 0, 1]],
                    children: {
                      Type: { text: enumOf(['Panel', 'ModalDialog', 'Modeless', 'Custom', 'Embedded', 'Dashboard']) },
                      Menu: { text: 'RequiredString', attrs: { Placement: ['RequiredString', false] } },
                      Geometry: {
                        seq: [['ScreenPercentage', 0, 1], ['Size', 0, 1], ['MaxSize', 0, 1], ['MinSize', 0, 1]],
                        children: { ScreenPercentage: size, Size: size, MaxSize: size, MinSize: size },
                      },
                      Icons: {
                        seq: [['Icon', 0, 5]],
                        children: {
                          Icon: {
                            text: 'RelativePathLoc',
                            attrs: { Type: [enumOf(['Normal', 'Disabled', 'RollOver', 'DarkNormal', 'DarkRollOver']), true] },
                          },
                        },
                      },
                    },
                  },
                  ExtensionData: { any: true },
                },
              },
            },
          },
        },
      },
    },
  },
};

// ---- a small strict XML reader: elements, attributes, text; comments and the declaration skipped ----
function parseXml(text) {
  const src = text.replace(/<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '');
  const re = /<(\/?)([A-Za-z_][\w.\-:]*)((?:\s+[\w.\-:]+\s*=\s*"[^"]*")*)\s*(\/?)>|([^<]+)/g;
  const root = { children: [] };
  const stack = [root];
  let m;
  while ((m = re.exec(src))) {
    const top = stack[stack.length - 1];
    if (m[5] !== undefined) {
      if (m[5].trim()) top.text = (top.text || '') + m[5].trim();
      continue;
    }
    if (m[1]) {
      if (top.name !== m[2]) throw new Error('XML: </' + m[2] + '> closes <' + top.name + '>');
      stack.pop();
      continue;
    }
    const attrs = {};
    m[3].replace(/([\w.\-:]+)\s*=\s*"([^"]*)"/g, (_, k, v) => {
      attrs[k] = v;
    });
    const el = { name: m[2], attrs: attrs, children: [], text: '' };
    top.children.push(el);
    if (!m[4]) stack.push(el);
  }
  if (stack.length !== 1 || root.children.length !== 1) throw new Error('XML: unbalanced or several roots');
  return root.children[0];
}

function validate(el, rule, where, problems) {
  const here = where + '/' + el.name;
  if (rule.any) return;
  const attrs = rule.attrs || {};
  for (const [name, value] of Object.entries(el.attrs)) {
    if (/^xmlns(:|$)/.test(name) || /^xsi:/.test(name)) continue; // namespace declarations
    if (!attrs[name]) problems.push(here + ': attribute ' + name + ' is not in the schema');
    else {
      const check = typeof attrs[name][0] === 'function' ? attrs[name][0] : TYPES[attrs[name][0]];
      if (!check(value)) problems.push(here + ': ' + name + '="' + value + '" is not a valid ' + attrs[name][0]);
    }
  }
  for (const [name, [, required]] of Object.entries(attrs)) {
    if (required && !(name in el.attrs)) problems.push(here + ': required attribute ' + name + ' missing');
  }
  if (rule.text) {
    const check = typeof rule.text === 'function' ? rule.text : TYPES[rule.text];
    if (!check(el.text)) problems.push(here + ': text "' + el.text + '" is not valid');
  } else if (el.text) problems.push(here + ': no text allowed');
  const seq = rule.seq || [];
  let i = 0;
  for (const [name, min, max] of seq) {
    let n = 0;
    while (i < el.children.length && el.children[i].name === name) {
      validate(el.children[i], rule.children[name], here, problems);
      i += 1;
      n += 1;
    }
    if (n < min) problems.push(here + ': needs ' + min + ' <' + name + '> (in this order: ' + seq.map((s) => s[0]).join(', ') + ')');
    if (n > max) problems.push(here + ': at most ' + max + ' <' + name + '>');
  }
  if (i < el.children.length) problems.push(here + ': <' + el.children[i].name + '> is not allowed here (order: ' + seq.map((s) => s[0]).join(', ') + ')');
}

function problemsOf(xml) {
  const root = parseXml(xml);
  const problems = [];
  if (root.name !== 'ExtensionManifest') return ['root is <' + root.name + '>'];
  validate(root, SCHEMA.ExtensionManifest, '', problems);
  return problems;
}

test('CSXS/manifest.xml follows ExtensionManifest_v_7_0.xsd (written out above)', () => {
  assert.deepEqual(problemsOf(fs.readFileSync(MANIFEST, 'utf8')), []);
});

test('the schema check catches what the XSD forbids', () => {
  const good = fs.readFileSync(MANIFEST, 'utf8');
  const cases = [
    [good.replace('<Lifecycle>', '<Lifecycle><Bogus/>'), /<Bogus> is not allowed/],
    [good.replace(/<UI>([\s\S]*?)<\/UI>/, (m) => m.replace(/<Type>Panel<\/Type>/, '<Type>Sidebar</Type>')), /Type: text "Sidebar"/],
    [good.replace('<MainPath>./client/index.html</MainPath>', '<MainPath>client/index.html</MainPath>'), /MainPath: text/],
    [good.replace('ExtensionBundleId="com.genfx.ae"', 'ExtensionBundleId="com genfx"'), /ExtensionBundleId="com genfx" is not a valid ID/],
    [good.replace('Name="CSXS"', 'Name="CEP"'), /RequiredRuntime: Name="CEP"/],
    [good.replace(/<ExecutionEnvironment>[\s\S]*<\/ExecutionEnvironment>/, ''), /needs 1 <ExecutionEnvironment>/],
    [good.replace('Version="[24.0,99.9]"', 'Version="24 and up"'), /Version="24 and up" is not a valid RangedVersion/],
  ];
  for (const [xml, expected] of cases) {
    assert.notEqual(xml, good, String(expected));
    assert.ok(problemsOf(xml).some((p) => expected.test(p)), expected + ': ' + problemsOf(xml).join('; '));
  }
});
