'use strict';
// A small, strict fake of the After Effects scripting DOM, enough to run host/*.jsx in Node:
// app / Project / ItemCollection / FolderItem / CompItem / FootageItem / FootageSource /
// LayerCollection / AVLayer / CameraLayer / effects with 3D Point Controls / ImportOptions / File /
// Folder / $.evalFile. It behaves like AE where the host script depends on it:
//   - layer indices are 1-based and shift when layers are added, moved or removed;
//   - LayerCollection.add/addNull put the new layer on top and select only it;
//   - adding an effect invalidates property references fetched before (AE does; scripts must re-fetch);
//   - an expression is really evaluated (in its own vm context, with thisComp.activeCamera and toWorld);
//     one that throws sets expressionError and valueAtTime returns the static value, as AE does;
//   - importFile without `sequence` gives a still, whose conformFrameRate cannot be set;
//     with `sequence` it counts the contiguous numbered files on disk; sequences come in at 30 fps
//     until conformFrameRate is set; Layer.outPoint follows the footage's duration;
//   - undo groups must nest and close.
// Camera layers get their world matrix and zoom from functions of time (the test supplies them);
// what AE computes from parenting / auto-orient is not modelled here, only sampled through toWorld.
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const SEQUENCE_DEFAULT_FPS = 30; // AE's "Sequence Footage" import preference default

function createAe(options) {
  const opts = options || {};
  const log = { undo: [], imports: [], adds: [], evalFiles: [], removed: [], expressions: [] };
  let nextId = 1;
  let undoDepth = 0;

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
      this.length = 0;
    }
    _push(item) {
      this.length += 1;
      this[this.length] = item;
      return item;
    }
    addFolder(name) {
      return this._push(new FolderItem(name));
    }
  }

  class FolderItem extends Item {
    constructor(name) {
      super(name);
      this.items = new ItemCollection();
    }
  }

  class AVItem extends Item {}

  class FootageSource {
    constructor(isStill, nativeFrameRate) {
      this.isStill = isStill;
      this.nativeFrameRate = nativeFrameRate;
      this.hasAlpha = true;
      this.alphaMode = AlphaMode.STRAIGHT;
      this.premulColor = [1, 1, 1];
      this._conform = 0;
    }
    get conformFrameRate() {
      return this._conform;
    }
    set conformFrameRate(v) {
      if (this.isStill) throw new Error('After Effects error: can not set conformFrameRate of a still');
      this._conform = v;
    }
    get displayFrameRate() {
      return this._conform || this.nativeFrameRate;
    }
  }

  class FootageItem extends AVItem {
    constructor(file, frames, isStill) {
      super(isStill ? path.basename(file) : sequenceName(file, frames));
      this.file = new File(file);
      this.frames = frames;
      this.mainSource = new FootageSource(isStill, isStill ? 0 : SEQUENCE_DEFAULT_FPS);
    }
    get duration() {
      return this.mainSource.isStill ? 0 : this.frames / this.mainSource.displayFrameRate;
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
      this._state = state; // {value, expression, expressionError}
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
      this._state.expression = String(text);
      this._state.expressionError = '';
      log.expressions.push(String(text));
    }
    get expressionError() {
      this._check();
      return this._state.expressionError;
    }
    valueAtTime(time, preExpression) {
      this._check();
      if (preExpression || !this._state.expression) return this._state.value.slice();
      const comp = this._layer.containingComp;
      const sandbox = { thisComp: comp._expressionView(time), time: time };
      try {
        const v = vm.runInNewContext(this._state.expression, sandbox, { timeout: 1000 });
        if (!v || v.length !== 3) throw new Error('Expression result must be of dimension 3');
        return [Number(v[0]), Number(v[1]), Number(v[2])];
      } catch (e) {
        this._state.expressionError = String(e.message || e);
        return this._state.value.slice();
      }
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
      const state = { value: [0, 0, 0], expression: '', expressionError: '' };
      const layer = this._layer;
      const effectChildren = [{ matchName: 'ADBE Point3D Control-0001', make: (owner) => new Property(owner, state, layer) }];
      this._children.push({
        matchName: matchName,
        make: (owner) => new PropertyGroup(owner, effectChildren, false, layer),
      });
      this._generation += 1; // every reference fetched before is now invalid
      return this.property(this._children.length);
    }
  }

  // ---- layers ----
  class Layer {
    constructor(comp, name) {
      this.containingComp = comp;
      this.name = name;
      this.comment = '';
      this.label = 0;
      this.selected = false;
      this.enabled = true;
      this.startTime = 0;
      this._removed = false;
      const parade = new PropertyGroup(null, [], true, this);
      parade._generation = 0;
      this._parade = parade;
    }
    get index() {
      const i = this.containingComp._layers.indexOf(this);
      if (i < 0) throw new Error('After Effects error: Object is invalid (layer was removed)');
      return i + 1;
    }
    get inPoint() {
      return this.startTime;
    }
    get outPoint() {
      return this.startTime + this._duration();
    }
    _duration() {
      return this.containingComp.duration;
    }
    property(name) {
      if (name === 'ADBE Effect Parade' || name === 'Effects') return this._parade;
      return null;
    }
    remove() {
      const layers = this.containingComp._layers;
      layers.splice(this.index - 1, 1);
      this._removed = true;
      log.removed.push(this.name);
    }
    moveToEnd() {
      const layers = this.containingComp._layers;
      layers.splice(this.index - 1, 1);
      layers.push(this);
    }
    moveBefore(other) {
      const layers = this.containingComp._layers;
      layers.splice(this.index - 1, 1);
      layers.splice(other.index - 1, 0, this);
    }
  }

  class AVLayer extends Layer {
    constructor(comp, name, source) {
      super(comp, name);
      this.source = source;
      this.threeDLayer = false;
    }
    _duration() {
      return this.source && this.source.duration ? this.source.duration : this.containingComp.duration;
    }
  }

  class CameraLayer extends Layer {
    /** worldAt(t) -> 16 numbers (AE world, row-major, column-vector); zoomAt(t) -> px. */
    constructor(comp, name, worldAt, zoomAt, inPoint, outPoint) {
      super(comp, name);
      this._worldAt = worldAt;
      this._zoomAt = zoomAt;
      this.startTime = inPoint || 0;
      this._out = outPoint;
    }
    get outPoint() {
      return this._out === undefined ? this.containingComp.duration : this._out;
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
        l.selected = l === layer;
      });
      return layer;
    }
    add(item, duration) {
      if (!(item instanceof AVItem)) throw new Error('After Effects error: add() needs an AVItem');
      log.adds.push({ item: item, duration: duration });
      return this._addOnTop(new AVLayer(this._comp, item.name, item));
    }
    addNull(duration) {
      return this._addOnTop(new AVLayer(this._comp, 'Null 1', null));
    }
    _addCamera(name, worldAt, zoomAt, inPoint, outPoint) {
      const cam = new CameraLayer(this._comp, name, worldAt, zoomAt, inPoint, outPoint);
      this._comp._layers.unshift(cam);
      return cam;
    }
    _addSolid(name) {
      const layer = new AVLayer(this._comp, name, null);
      this._comp._layers.unshift(layer);
      return layer;
    }
  }

  class CompItem extends AVItem {
    constructor(o) {
      super(o.name || 'Comp 1');
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
      this.layers = new LayerCollection(this);
    }
    get numLayers() {
      return this._layers.length;
    }
    layer(i) {
      return this._layers[i - 1];
    }
    get selectedLayers() {
      return this._layers.filter((l) => l.selected);
    }
    _activeCameraAt(t) {
      return this._layers.filter((l) => l instanceof CameraLayer && l.enabled && l.inPoint <= t && t < l.outPoint)[0] || null;
    }
    get activeCamera() {
      return this._activeCameraAt(this.time);
    }
    /** What an expression sees as thisComp at time t. */
    _expressionView(t) {
      const cam = this._activeCameraAt(t);
      const view = { width: this.width, height: this.height, activeCamera: null };
      if (cam) {
        const m = cam._worldAt(t);
        view.activeCamera = {
          name: cam.name,
          zoom: cam._zoomAt(t),
          toWorld: (p) => [0, 1, 2].map((i) => m[i * 4] * p[0] + m[i * 4 + 1] * p[1] + m[i * 4 + 2] * p[2] + m[i * 4 + 3]),
        };
      }
      return view;
    }
  }

  // ---- import ----
  const ImportAsType = { COMP_CROPPED_LAYERS: 1, FOOTAGE: 2, COMP: 3, PROJECT: 4 };
  const AlphaMode = { IGNORE: 1, STRAIGHT: 2, PREMULTIPLIED: 3 };

  class ImportOptions {
    constructor(file) {
      this.file = file;
      this.sequence = false;
      this.forceAlphabetical = false;
      this.importAs = ImportAsType.FOOTAGE;
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
      this.items = new ItemCollection();
      this.activeItem = null;
      this.bitsPerChannel = 8;
      this.workingSpace = '';
      this.linearizeWorkingSpace = false;
      this.linearBlending = false;
      this.file = null;
    }
    importFile(io) {
      if (!(io instanceof ImportOptions)) throw new Error('After Effects error: importFile needs ImportOptions');
      if (!io.file || !io.file.exists) throw new Error('After Effects error: file does not exist');
      log.imports.push({ file: io.file.fsName, sequence: io.sequence, forceAlphabetical: io.forceAlphabetical, importAs: io.importAs });
      const frames = io.sequence ? countSequence(io.file.fsName) : 1;
      const item = new FootageItem(io.file.fsName, frames, !io.sequence);
      this.items._push(item);
      return item;
    }
  }

  const project = new Project();
  const app = {
    project: project,
    beginUndoGroup(name) {
      undoDepth += 1;
      log.undo.push('begin:' + name);
    },
    endUndoGroup() {
      if (undoDepth <= 0) throw new Error('After Effects error: endUndoGroup without beginUndoGroup');
      undoDepth -= 1;
      log.undo.push('end');
    },
  };

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
    CameraLayer,
    Property,
    PropertyGroup,
    ImportOptions,
    ImportAsType,
    AlphaMode,
  };
  const context = vm.createContext(sandbox);
  sandbox.$ = {
    global: context,
    evalFile(file) {
      const p = file instanceof File ? file.fsName : String(file);
      log.evalFiles.push(p);
      return vm.runInContext(fs.readFileSync(p, 'utf8'), context, { filename: p });
    },
  };

  function addComp(o) {
    const comp = new CompItem(o);
    project.items._push(comp);
    project.activeItem = comp;
    return comp;
  }

  /** Like CSInterface.evalScript: run a script in the host context, return its value as a string. */
  function evalScript(script) {
    return String(vm.runInContext(script, context));
  }

  return {
    app,
    project,
    context,
    log,
    addComp,
    evalScript,
    undoDepth: () => undoDepth,
    classes: { File, Folder, CompItem, FootageItem, FolderItem, AVLayer, CameraLayer, ImportOptions },
    ImportAsType,
    AlphaMode,
  };
}

module.exports = { createAe, SEQUENCE_DEFAULT_FPS };
