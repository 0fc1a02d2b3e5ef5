'use strict';
// A strict fake of the After Effects scripting DOM, enough to run host/*.jsx in Node. It follows the
// documented rules the host script depends on (scripting guide, expression reference, types-for-adobe):
//   - its surface is types-for-adobe's: every object it hands out is guarded (ae_types.js), so a member
//     the AE 24.0 typings do not declare, or an assignment to a read-only one, throws; enum values
//     (AlphaMode, ImportAsType) are the typings' real numbers;
//   - host scripts run in a context whose ES5+ built-ins are gone (no JSON, Array.prototype.forEach,
//     Object.keys, String.prototype.trim, Function.prototype.bind, Date.now ...), as in ExtendScript;
//   - layer indices are 1-based and shift when layers are added, moved or removed;
//     LayerCollection.add/addNull/addShape put the new layer on top and select only it;
//   - addNull "is the same as Layer > New > Null Object": it creates a solid item in the project (in a
//     Solids folder) and removing the layer leaves the item; addShape creates no item;
//   - locked layers refuse selection changes;
//   - adding an effect invalidates property references fetched before;
//   - an expression is evaluated when it is set, at the comp's current time; one that throws is disabled
//     (expressionEnabled = false, expressionError set) and the property then gives its static value,
//     at every time; thisComp.activeCamera throws where no enabled camera is active;
//   - importFile: a numbered file imported with `sequence` whose folder holds only that one frame comes in
//     as a still (isStill), whose conformFrameRate cannot be set; sequences come in at 30 fps until
//     conformFrameRate is set; alphaMode cannot be set on a source without alpha;
//   - undo groups must nest and close; each outermost group is one entry in Edit > Undo.
// Camera layers get their world matrix (AE's square-pixel world) and zoom from functions of time that
// the tests supply; toWorld answers in comp coordinates (x / pixel aspect). What AE computes from
// parenting / auto-orient is not modelled here, only sampled through toWorld.
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const types = require('./ae_types');

const SEQUENCE_DEFAULT_FPS = 30; // AE's "Sequence Footage" import preference default
// ES5 and later built-ins that ExtendScript (ES3) does not have: removed from the host's context.
const ES5_BUILTINS = [
  'JSON',
  'Object.keys',
  'Object.create',
  'Object.defineProperty',
  'Object.defineProperties',
  'Object.getPrototypeOf',
  'Object.getOwnPropertyNames',
  'Object.freeze',
  'Object.assign',
  'Object.entries',
  'Object.values',
  'Array.isArray',
  'Array.from',
  'Array.prototype.forEach',
  'Array.prototype.map',
  'Array.prototype.filter',
  'Array.prototype.reduce',
  'Array.prototype.reduceRight',
  'Array.prototype.some',
  'Array.prototype.every',
  'Array.prototype.indexOf',
  'Array.prototype.lastIndexOf',
  'Array.prototype.find',
  'Array.prototype.includes',
  'String.prototype.trim',
  'String.prototype.startsWith',
  'String.prototype.endsWith',
  'String.prototype.includes',
  'String.prototype.repeat',
  'Function.prototype.bind',
  'Date.now',
  'Date.prototype.toISOString',
  'Date.prototype.toJSON',
];

function createAe(options) {
  const opts = options || {};
  const footageHasAlpha = opts.footageHasAlpha === undefined ? true : opts.footageHasAlpha;
  const log = { undo: [], undoGroups: 0, imports: [], adds: [], evalFiles: [], removed: [], expressions: [], touched: new Set() };
  let nextId = 1;
  let undoDepth = 0;
  const proxies = new WeakMap();

  // ---- the types-for-adobe guard ----
  function guard(obj, className) {
    if (proxies.has(obj)) return proxies.get(obj);
    const proxy = new Proxy(obj, {
      get(target, prop, receiver) {
        if (typeof prop !== 'symbol' && !internal(prop)) {
          const decl = types.member(className, prop);
          if (!decl && !/^\d+$/.test(prop)) throw new TypeError('mock AE: ' + className + '.' + prop + ' is not in types-for-adobe');
          log.touched.add(className + '.' + prop);
        }
        return Reflect.get(target, prop, receiver);
      },
      set(target, prop, value, receiver) {
        if (typeof prop !== 'symbol' && !internal(prop) && !/^\d+$/.test(prop)) {
          const decl = types.member(className, prop);
          if (!decl) throw new TypeError('mock AE: ' + className + '.' + prop + ' is not in types-for-adobe');
          if (decl.readonly || decl.method) throw new Error('After Effects error: ' + className + '.' + prop + ' is read-only');
          log.touched.add(className + '.' + prop + '=');
        }
        return Reflect.set(target, prop, value, receiver);
      },
    });
    proxies.set(obj, proxy);
    return proxy;
  }
  function internal(prop) {
    return prop.charAt(0) === '_' || prop === 'constructor' || prop === 'then' || prop === 'toJSON' || prop === 'inspect';
  }

  class File {
    constructor(p) {
      this._path = String(p);
    }
    get fsName() {
      return path.resolve(this._path);
    }
    get name() {
      return path.basename(this._path);
    }
    get exists() {
      return fs.existsSync(this._path);
    }
    get parent() {
      return new Folder(path.dirname(path.resolve(this._path)));
    }
  }

  class Folder {
    constructor(p) {
      this._path = String(p);
    }
    get fsName() {
      return path.resolve(this._path);
    }
    get exists() {
      return fs.existsSync(this._path);
    }
  }

  class Item {
    constructor(name) {
      this.id = nextId++;
      this.name = name;
      this.comment = '';
      this.label = 0;
      this.selected = false;
      this.parentFolder = null;
    }
  }

  class ItemCollection {
    constructor() {
      this._length = 0;
    }
    get length() {
      return this._length;
    }
    _push(item) {
      this._length += 1;
      this[this._length] = item;
      return item;
    }
    addFolder(name) {
      return this._push(guard(new FolderItem(name), 'FolderItem'));
    }
  }

  class FolderItem extends Item {
    constructor(name) {
      super(name);
      this.items = guard(new ItemCollection(), 'ItemCollection');
    }
  }

  class AVItem extends Item {
    constructor(name) {
      super(name);
      this.pixelAspect = 1;
    }
  }

  class FootageSource {
    constructor(isStill, nativeFrameRate, hasAlpha) {
      this._still = isStill;
      this.nativeFrameRate = nativeFrameRate;
      this._hasAlpha = hasAlpha;
      this._alphaMode = hasAlpha ? AlphaMode.STRAIGHT : AlphaMode.IGNORE;
      this.premulColor = [1, 1, 1];
      this._conform = 0;
    }
    get isStill() {
      return this._still;
    }
    get hasAlpha() {
      return this._hasAlpha;
    }
    set hasAlpha(v) {
      this._hasAlpha = Boolean(v);
    }
    get alphaMode() {
      return this._alphaMode;
    }
    set alphaMode(v) {
      if (!this._hasAlpha) throw new Error('After Effects error: the footage has no alpha channel to interpret');
      this._alphaMode = v;
    }
    get conformFrameRate() {
      return this._conform;
    }
    set conformFrameRate(v) {
      // "It is an error to set this value if FootageSource.isStill is true."
      if (this._still) throw new Error('After Effects error: can not set conformFrameRate of a still');
      this._conform = v;
    }
    get displayFrameRate() {
      return this._conform || this.nativeFrameRate;
    }
  }

  class SolidSource extends FootageSource {
    constructor() {
      super(true, 0, false);
      this.color = [1, 1, 1];
    }
  }

  class FootageItem extends AVItem {
    constructor(file, frames, isStill) {
      super(file ? (isStill ? path.basename(file) : sequenceName(file, frames)) : 'Null 1');
      this._file = file ? new File(file) : null;
      this._frames = frames;
      this._source = file ? guard(new FootageSource(isStill, isStill ? 0 : SEQUENCE_DEFAULT_FPS, footageHasAlpha), 'FootageSource') : guard(new SolidSource(), 'SolidSource');
    }
    get file() {
      return this._file;
    }
    get mainSource() {
      return this._source;
    }
    get duration() {
      return this._source.isStill ? 0 : this._frames / this._source.displayFrameRate;
    }
  }

  function sequenceName(file, frames) {
    const m = /^(.*\.)(\d+)(\.exr)$/.exec(path.basename(file));
    return m ? m[1] + '[' + m[2] + '-' + (Number(m[2]) + frames - 1) + ']' + m[3] : path.basename(file);
  }

  // ---- properties and effects ----
  class PropertyBase {
    constructor(owner) {
      this._owner = owner; // the effect parade this reference was fetched from
      this._generation = owner ? owner._generation : 0;
    }
    _check() {
      if (this._owner && this._owner._generation !== this._generation) {
        throw new Error('After Effects error: Object is invalid (fetched before an effect was added)');
      }
    }
  }

  class Property extends PropertyBase {
    constructor(owner, state, layer) {
      super(owner);
      this._state = state; // {value, expression, enabled, error}
      this._layer = layer;
    }
    get value() {
      this._check();
      return this._state.value.slice();
    }
    get expression() {
      this._check();
      return this._state.expression;
    }
    set expression(text) {
      this._check();
      const s = this._state;
      s.expression = String(text);
      s.enabled = true;
      s.error = '';
      log.expressions.push(String(text));
      // AE evaluates a new expression at once, at the comp's current time, and disables it on error.
      if (s.expression) this._evaluate(this._layer.containingComp.time);
    }
    get expressionEnabled() {
      return this._state.enabled;
    }
    set expressionEnabled(v) {
      this._state.enabled = Boolean(v);
    }
    get expressionError() {
      this._check();
      return this._state.error;
    }
    _evaluate(time) {
      const s = this._state;
      const comp = this._layer.containingComp;
      const sandbox = { thisComp: comp._expressionView(time), time: time };
      try {
        const v = vm.runInNewContext(s.expression, sandbox, { timeout: 1000 });
        if (!v || v.length !== 3) throw new Error('Expression result must be of dimension 3');
        return [Number(v[0]), Number(v[1]), Number(v[2])];
      } catch (e) {
        s.error = String(e.message || e);
        s.enabled = false;
        return s.value.slice();
      }
    }
    valueAtTime(time, preExpression) {
      this._check();
      const s = this._state;
      if (preExpression || !s.expression || !s.enabled) return s.value.slice();
      return this._evaluate(time);
    }
  }

  class PropertyGroup extends PropertyBase {
    constructor(owner, children, addable, layer) {
      super(owner);
      this._children = children; // array of {matchName, make(owner)}
      this._addable = addable;
      this._layer = layer;
    }
    get numProperties() {
      this._check();
      return this._children.length;
    }
    property(indexOrName) {
      this._check();
      const child =
        typeof indexOrName === 'number'
          ? this._children[indexOrName - 1]
          : this._children.filter((c) => c.matchName === indexOrName)[0];
      if (!child) return null;
      return child.make(this._addable ? this : this._owner);
    }
    addProperty(matchName) {
      this._check();
      if (!this._addable) throw new Error('After Effects error: can not add a property to this group');
      if (matchName !== 'ADBE Point3D Control') throw new Error('mock: unsupported effect ' + matchName);
      const state = { value: [0, 0, 0], expression: '', enabled: true, error: '' };
      const layer = this._layer;
      const effectChildren = [{ matchName: 'ADBE Point3D Control-0001', make: (owner) => guard(new Property(owner, state, layer), 'Property') }];
      this._children.push({
        matchName: matchName,
        make: (owner) => guard(new PropertyGroup(owner, effectChildren, false, layer), 'PropertyGroup'),
      });
      this._generation += 1; // every reference fetched before is now invalid
      return this.property(this._children.length);
    }
  }

  // ---- layers ----
  class Layer {
    constructor(comp, name) {
      this._comp = comp;
      this.name = name;
      this.comment = '';
      this.label = 0;
      this._selected = false;
      this.locked = false;
      this.enabled = true;
      this.startTime = 0;
      this._outOverride = null;
      this._removed = false;
      this._parade = guard(new PropertyGroup(null, [], true, this), 'PropertyGroup');
    }
    get containingComp() {
      return this._comp;
    }
    get selected() {
      return this._selected;
    }
    set selected(v) {
      if (this.locked && Boolean(v) !== this._selected) throw new Error('After Effects error: the layer is locked');
      this._selected = Boolean(v);
    }
    get index() {
      const i = this._comp._layers.indexOf(this._self());
      if (i < 0) throw new Error('After Effects error: Object is invalid (layer was removed)');
      return i + 1;
    }
    _self() {
      return proxies.get(this) || this;
    }
    get inPoint() {
      return this.startTime;
    }
    set inPoint(v) {
      this.startTime = v;
    }
    get outPoint() {
      return this._outOverride !== null ? this._outOverride : this.startTime + this._duration();
    }
    set outPoint(v) {
      this._outOverride = v;
    }
    _duration() {
      return this._comp.duration;
    }
    property(name) {
      if (name === 'ADBE Effect Parade' || name === 'Effects') return this._parade;
      return null;
    }
    remove() {
      const layers = this._comp._layers;
      layers.splice(this.index - 1, 1);
      this._removed = true;
      log.removed.push(this.name);
    }
    moveToEnd() {
      const layers = this._comp._layers;
      const self = this._self();
      layers.splice(this.index - 1, 1);
      layers.push(self);
    }
    moveBefore(other) {
      const layers = this._comp._layers;
      const self = this._self();
      layers.splice(this.index - 1, 1);
      layers.splice(other.index - 1, 0, self);
    }
  }

  class AVLayer extends Layer {
    constructor(comp, name, source) {
      super(comp, name);
      this._source = source;
      this.threeDLayer = false;
    }
    get source() {
      return this._source;
    }
    _duration() {
      const src = this._source;
      return src && src.duration ? src.duration : this._comp.duration; // stills last the comp
    }
  }

  class ShapeLayer extends AVLayer {}

  class CameraLayer extends Layer {
    /** worldAt(t) -> 16 numbers (AE square-pixel world, row-major, column-vector); zoomAt(t) -> px. */
    constructor(comp, name, worldAt, zoomAt, inPoint, outPoint) {
      super(comp, name);
      this._worldAt = worldAt;
      this._zoomAt = zoomAt;
      this.startTime = inPoint || 0;
      if (outPoint !== undefined) this._outOverride = outPoint;
    }
  }

  class LayerCollection {
    constructor(comp) {
      this._comp = comp;
    }
    get length() {
      return this._comp._layers.length;
    }
    _addOnTop(layer) {
      this._comp._layers.unshift(layer);
      this._comp._layers.forEach((l) => {
        l._selected = l === layer; // AE selects the new layer only (locked ones included: AE does it)
      });
      return layer;
    }
    add(item, duration) {
      if (!(item instanceof AVItem)) throw new Error('After Effects error: add() needs an AVItem');
      log.adds.push({ item: item, duration: duration });
      return this._addOnTop(guard(new AVLayer(this._comp, item.name, item), 'AVLayer'));
    }
    addNull(duration) {
      // Layer > New > Null Object: a solid item in the project's Solids folder backs the layer.
      const project = this._comp._project;
      const n = project._nulls = (project._nulls || 0) + 1;
      const solid = guard(new FootageItem(null, 1, true), 'FootageItem');
      solid.name = 'Null ' + n;
      solid.parentFolder = project._solidsFolder();
      project.items._push(solid);
      const layer = guard(new AVLayer(this._comp, 'Null ' + n, solid), 'AVLayer');
      return this._addOnTop(layer);
    }
    addShape() {
      const n = (this._comp._shapes = (this._comp._shapes || 0) + 1);
      return this._addOnTop(guard(new ShapeLayer(this._comp, 'Shape Layer ' + n, null), 'ShapeLayer'));
    }
    _addCamera(name, worldAt, zoomAt, inPoint, outPoint) {
      const cam = guard(new CameraLayer(this._comp, name, worldAt, zoomAt, inPoint, outPoint), 'CameraLayer');
      this._comp._layers.unshift(cam);
      return cam;
    }
    _addSolid(name) {
      const layer = guard(new AVLayer(this._comp, name, null), 'AVLayer');
      this._comp._layers.unshift(layer);
      return layer;
    }
  }

  class CompItem extends AVItem {
    constructor(o, project) {
      super(o.name || 'Comp 1');
      this._project = project;
      this.width = o.width;
      this.height = o.height;
      this.pixelAspect = o.pixelAspect || 1;
      this.frameRate = o.frameRate || 24;
      this.frameDuration = 1 / this.frameRate;
      this.duration = o.duration || 10;
      this.displayStartFrame = o.displayStartFrame || 0;
      this.workAreaStart = o.workAreaStart || 0;
      this.workAreaDuration = o.workAreaDuration || this.duration;
      this.time = o.time || 0;
      this._layers = [];
      this._layerCollection = guard(new LayerCollection(this), 'LayerCollection');
    }
    get layers() {
      return this._layerCollection;
    }
    get numLayers() {
      return this._layers.length;
    }
    layer(i) {
      return this._layers[i - 1];
    }
    get selectedLayers() {
      return hostArray(this._layers.filter((l) => l._selected));
    }
    _activeCameraAt(t) {
      const eps = 1e-9; // AE's times sit on frames; k * frameDuration and k / fps may differ in the last bit
      return this._layers.filter((l) => l instanceof CameraLayer && l.enabled && l.inPoint <= t + eps && t + eps < l.outPoint)[0] || null;
    }
    get activeCamera() {
      return this._activeCameraAt(this.time);
    }
    /** What an expression sees as thisComp at time t. */
    _expressionView(t) {
      const comp = this;
      const pa = this.pixelAspect;
      return {
        width: this.width,
        height: this.height,
        pixelAspect: pa,
        get activeCamera() {
          const cam = comp._activeCameraAt(t);
          if (!cam) throw new Error('thisComp.activeCamera: there is no active camera at this time');
          const m = cam._worldAt(t);
          return {
            name: cam.name,
            zoom: cam._zoomAt(t),
            toWorld: (p) => {
              const q = [0, 1, 2].map((i) => m[i * 4] * p[0] + m[i * 4 + 1] * p[1] + m[i * 4 + 2] * p[2] + m[i * 4 + 3]);
              return [q[0] / pa, q[1], q[2]]; // comp coordinates: x in the comp's pixels
            },
          };
        },
      };
    }
  }

  // ---- import ----
  const AlphaMode = Object.assign({}, types.surface().enums.AlphaMode);
  const ImportAsType = Object.assign({}, types.surface().enums.ImportAsType);

  class ImportOptions {
    constructor(file) {
      this.file = file;
      this.sequence = false;
      this.forceAlphabetical = false;
      this.importAs = ImportAsType.FOOTAGE;
      return guard(this, 'ImportOptions');
    }
    canImportAs(type) {
      return type === ImportAsType.FOOTAGE;
    }
  }

  function countSequence(first) {
    const m = /^(.*\.)(\d+)(\.exr)$/.exec(path.basename(first));
    if (!m) return 1;
    const dir = path.dirname(first);
    let n = 0;
    for (;;) {
      const f = String(Number(m[2]) + n);
      const padded = f.length < m[2].length ? '0'.repeat(m[2].length - f.length) + f : f;
      if (!fs.existsSync(path.join(dir, m[1] + padded + m[3]))) break;
      n += 1;
    }
    return n;
  }

  class Project {
    constructor() {
      this._items = guard(new ItemCollection(), 'ItemCollection');
      this._active = null;
      this.bitsPerChannel = 8;
      this.workingSpace = '';
      this.linearizeWorkingSpace = false;
      this.linearBlending = false;
      this._file = null;
    }
    get items() {
      return this._items;
    }
    get activeItem() {
      return this._active;
    }
    get file() {
      return this._file;
    }
    _solidsFolder() {
      for (let i = 1; i <= this._items.length; i++) {
        const it = this._items[i];
        if (it instanceof FolderItem && it.name === 'Solids') return it;
      }
      return this._items.addFolder('Solids');
    }
    importFile(io) {
      if (!(io instanceof ImportOptions)) throw new Error('After Effects error: importFile needs ImportOptions');
      if (!io.file || !io.file.exists) throw new Error('After Effects error: file does not exist');
      log.imports.push({ file: io.file.fsName, sequence: io.sequence, forceAlphabetical: io.forceAlphabetical, importAs: io.importAs });
      const frames = io.sequence ? countSequence(io.file.fsName) : 1;
      // A "sequence" of one file comes in as a still.
      const item = guard(new FootageItem(io.file.fsName, frames, frames <= 1), 'FootageItem');
      this._items._push(item);
      return item;
    }
  }

  const project = guard(new Project(), 'Project');
  class Application {
    get project() {
      return project;
    }
    beginUndoGroup(name) {
      undoDepth += 1;
      log.undo.push('begin:' + name);
    }
    endUndoGroup() {
      if (undoDepth <= 0) throw new Error('After Effects error: endUndoGroup without beginUndoGroup');
      undoDepth -= 1;
      if (undoDepth === 0) log.undoGroups += 1;
      log.undo.push('end');
    }
  }
  const app = guard(new Application(), 'Application');

  const sandbox = {
    app,
    File,
    Folder,
    CompItem,
    FootageItem,
    FolderItem,
    AVItem,
    Item,
    Layer,
    AVLayer,
    ShapeLayer,
    CameraLayer,
    Property,
    PropertyGroup,
    ImportOptions,
    ImportAsType,
    AlphaMode,
  };
  const context = vm.createContext(sandbox);
  // ExtendScript is ES3: take away what came later, so a host script that uses it fails here too.
  vm.runInContext(
    ES5_BUILTINS.map((name) => 'delete ' + name + ';').join('\n'),
    context
  );
  function hostArray(items) {
    const a = vm.runInContext('[]', context);
    for (let i = 0; i < items.length; i++) a[i] = items[i];
    return a;
  }
  sandbox.$ = {
    global: context,
    evalFile(file) {
      const p = file instanceof File ? file.fsName : String(file);
      log.evalFiles.push(p);
      return vm.runInContext(fs.readFileSync(p, 'utf8'), context, { filename: p });
    },
  };

  function addComp(o) {
    const comp = guard(new CompItem(o, project), 'CompItem');
    project.items._push(comp);
    project._active = comp;
    return comp;
  }

  /** Like CSInterface.evalScript: run a script in the host context, return its value as a string. */
  function evalScript(script) {
    return String(vm.runInContext(script, context));
  }

  /** Items in the project of a class (e.g. FootageItem), by walking project.items. */
  function itemsOf(cls) {
    const out = [];
    for (let i = 1; i <= project.items.length; i++) if (project.items[i] instanceof cls) out.push(project.items[i]);
    return out;
  }

  return {
    app,
    project,
    context,
    log,
    addComp,
    evalScript,
    itemsOf,
    undoDepth: () => undoDepth,
    classes: { File, Folder, CompItem, FootageItem, FolderItem, AVLayer, ShapeLayer, CameraLayer, ImportOptions },
    ImportAsType,
    AlphaMode,
    ES5_BUILTINS,
  };
}

module.exports = { createAe, SEQUENCE_DEFAULT_FPS };
