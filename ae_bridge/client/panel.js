/*
 * GenFX panel UI: binds the page to node/panel_controller.js (which does the work in CEP's Node).
 * Settings (server, token, output folder, label) persist in the panel's localStorage.
 */
(function (global) {
  'use strict';
  var doc = global.document;
  var cepApi = global.GenfxCep;
  var $ = function (id) { return doc.getElementById(id); };
  var SETTINGS_KEY = 'genfx.settings.v1';
  var LABELS = ['None', 'Red', 'Yellow', 'Aqua', 'Pink', 'Lavender', 'Peach', 'Sea Foam', 'Blue', 'Green',
    'Purple', 'Orange', 'Brown', 'Fuchsia', 'Cyan', 'Sandstone', 'Dark Green'];

  var controller = null;
  var comp = null;
  var rangeTouched = false;

  function log(message, cls) {
    var line = doc.createElement('div');
    line.textContent = new Date().toLocaleTimeString() + '  ' + message;
    if (cls) line.className = cls;
    $('log').appendChild(line);
    $('log').scrollTop = $('log').scrollHeight;
  }

  function fail(e) {
    log(String(e && e.message ? e.message : e), 'error');
  }

  function loadSettings() {
    try {
      return JSON.parse(global.localStorage.getItem(SETTINGS_KEY) || '{}');
    } catch (e) {
      return {};
    }
  }

  function saveSettings() {
    global.localStorage.setItem(SETTINGS_KEY, JSON.stringify({
      address: $('address').value.trim(),
      token: $('token').value,
      output: $('output').value.trim(),
      label: Number($('label-colour').value),
      colorspace: $('colorspace').value,
      colourEngine: $('colour-engine').value
    }));
  }

  function setBusy(busy) {
    $('go').disabled = busy;
    $('cancel').disabled = !busy;
  }

  function setProgress(fraction, text) {
    if (fraction !== null && fraction !== undefined) $('progress').value = fraction;
    if (text) $('progress-text').textContent = text;
  }

  function showComp(info) {
    comp = info;
    var cam = info.hasCamera ? 'camera: ' + (info.activeCamera || '(none active now)') : "no camera: AE's default 50 mm";
    $('comp-summary').textContent = info.name + ' \u2014 ' + info.width + '\u00d7' + info.height +
      (info.pixelAspect !== 1 ? ' (PAR ' + info.pixelAspect + ')' : '') + ', ' +
      Math.round(info.frameRate * 1000) / 1000 + ' fps, work area ' + info.workArea.start + '-' + info.workArea.end + ', ' + cam;
    var ul = $('comp-warnings');
    ul.textContent = '';
    info.warnings.forEach(function (w) {
      var li = doc.createElement('li');
      li.textContent = w;
      ul.appendChild(li);
    });
    if (!rangeTouched) {
      $('frame-start').value = info.workArea.start;
      $('frame-end').value = info.workArea.end;
    }
    $('output').placeholder = controller.defaultOutputRoot(info);
  }

  function refreshComp() {
    controller.colour = { engine: $('colour-engine').value, space: $('colorspace').value };
    return controller.compInfo().then(showComp, fail);
  }

  function connect() {
    saveSettings();
    $('server-status').textContent = 'connecting\u2026';
    $('server-status').className = 'muted';
    return controller.connect($('address').value.trim() || '127.0.0.1:50051', $('token').value).then(function (info) {
      $('server-status').textContent = 'GenFX ' + info.version + ' \u00b7 ' + info.devices.map(function (d) { return d.name; }).join(', ');
      $('server-status').className = 'ok';
      var select = $('model');
      var keep = select.value;
      select.textContent = '';
      info.models.forEach(function (m, i) {
        var o = doc.createElement('option');
        o.value = m.name;
        o.textContent = m.name + (i === 0 ? ' (default)' : '') + ' \u2014 ' + m.family;
        select.appendChild(o);
      });
      if (keep) select.value = keep;
      loraRows().forEach(function (row) { fillLoraMenu(row.children[0]); });
      $('steps').max = info.limits.max_steps;
      // Empty fields are left to the server: show what it will use (the panel keeps no defaults).
      $('steps').placeholder = String(info.defaults.steps);
      $('keyframe-step').placeholder = String(info.defaults.keyframe_step);
      return refreshJobs();
    }, function (e) {
      $('server-status').textContent = 'not connected';
      $('server-status').className = 'error';
      fail(e);
    });
  }

  // LoRA rows: a menu of the server's LoRAs (those for the chosen model first) and a weight each.
  function fillLoraMenu(select) {
    var keep = select.value;
    select.textContent = '';
    controller.loraChoices($('model').value).forEach(function (c) {
      var o = doc.createElement('option');
      o.value = c.name;
      o.textContent = c.label;
      select.appendChild(o);
    });
    if (keep) select.value = keep;
  }

  function addLoraRow() {
    if (!controller.loraChoices('').length) {
      log('This server serves no LoRAs (its models config lists none).', 'error');
      return;
    }
    var row = doc.createElement('div');
    row.className = 'lora-row';
    var select = doc.createElement('select');
    select.className = 'lora-name';
    fillLoraMenu(select);
    var weight = doc.createElement('input');
    weight.className = 'lora-weight';
    weight.type = 'number';
    weight.step = '0.05';
    var max = controller.maxLoraWeight();
    weight.min = String(-max);
    weight.max = String(max);
    weight.placeholder = '1';
    weight.title = 'Weight, within \u00b1' + max + ' (the server\'s limit); empty = 1';
    var remove = doc.createElement('button');
    remove.className = 'small';
    remove.textContent = '\u00d7';
    remove.title = 'Remove this LoRA';
    remove.addEventListener('click', function () { $('lora-rows').removeChild(row); });
    row.appendChild(select);
    row.appendChild(weight);
    row.appendChild(remove);
    $('lora-rows').appendChild(row);
  }

  function loraRows() {
    return Array.prototype.slice.call($('lora-rows').children); // an HTMLCollection in the page
  }

  function loras() {
    var out = [];
    loraRows().forEach(function (row) {
      var name = row.children[0].value, weight = row.children[1].value;
      out.push({ name: name, weight: weight });
    });
    return out;
  }

  function form() {
    return {
      prompt: $('prompt').value,
      negativePrompt: $('negative').value,
      seed: $('seed').value.trim(),
      steps: $('steps').value,
      model: $('model').value,
      loras: loras(),
      frameStart: $('frame-start').value,
      frameEnd: $('frame-end').value,
      keyframeStep: $('keyframe-step').value,
      outputRoot: $('output').value.trim() || undefined,
      label: Number($('label-colour').value),
      colorspace: $('colorspace').value,
      colourEngine: $('colour-engine').value
    };
  }

  function generate() {
    saveSettings();
    setBusy(true);
    setProgress(0, 'Starting\u2026');
    controller.generate(form(), {
      onProgress: setProgress,
      onJob: function (job) { log('Submitted job ' + job.id); }
    }).then(function (r) {
      setProgress(1, 'Done: ' + r.imported.layerName);
      return refreshComp();
    }, function (e) {
      setProgress(null, 'Stopped');
      fail(e);
    }).then(function () {
      setBusy(false);
      return refreshJobs();
    });
  }

  function cancel() {
    controller.cancel().then(function (job) { log('Cancel requested for ' + job.id); }, fail);
  }

  function importJob(id, button) {
    button.disabled = true;
    log('Importing ' + id.slice(0, 8) + '\u2026');
    controller.importJob(id, {
      placeAt: $('place-at').value,
      outputRoot: $('output').value.trim() || undefined,
      label: Number($('label-colour').value)
    }).then(function (r) { log('Imported ' + r.layerName, 'ok'); }, fail).then(function () { button.disabled = false; });
  }

  function cell(tr, text, cls) {
    var td = doc.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function refreshJobs() {
    if (!controller.client) return Promise.resolve();
    return controller.listJobs(50).then(function (rows) {
      var body = $('job-rows');
      body.textContent = '';
      rows.forEach(function (j) {
        var tr = doc.createElement('tr');
        cell(tr, j.id.slice(0, 8), 'id').title = j.id;
        cell(tr, j.state.toLowerCase() + (j.state === 'RUNNING' ? ' ' + j.framesDone + '/' + j.framesTotal : ''));
        cell(tr, j.frames);
        cell(tr, (j.clientTag || '').split(':')[0]).title = j.clientTag || '';
        cell(tr, j.prompt || '', 'prompt').title = j.prompt || '';
        var td = cell(tr, '');
        if (j.importable) {
          var b = doc.createElement('button');
          b.className = 'small';
          b.textContent = 'Import';
          b.addEventListener('click', function () { importJob(j.id, b); });
          td.appendChild(b);
        }
        body.appendChild(tr);
      });
    }, fail);
  }

  function init() {
    LABELS.forEach(function (name, i) {
      var o = doc.createElement('option');
      o.value = String(i);
      o.textContent = name;
      $('label-colour').appendChild(o);
    });
    var s = loadSettings();
    $('address').value = s.address || '127.0.0.1:50051';
    $('token').value = s.token || '';
    $('output').value = s.output || '';
    $('label-colour').value = String(s.label === undefined ? 10 : s.label);
    $('colorspace').value = s.colorspace || 'linear_rec709';
    $('colour-engine').value = s.colourEngine || 'adobe';

    if (!cepApi.inHost) {
      log('Not running inside After Effects: open this panel from Window > Extensions > GenFX.', 'error');
      return;
    }
    if (!cepApi.nodeRequire) {
      log('Node.js is not enabled for this panel (manifest: --enable-nodejs --mixed-context).', 'error');
      return;
    }
    var root = cepApi.extensionRoot();
    var req = cepApi.nodeRequire;
    var bridge = req(root + '/node/host_bridge.js');
    var PanelController = req(root + '/node/panel_controller.js').PanelController;
    controller = new PanelController({ host: bridge.makeHost(cepApi.evalScript), log: log });

    $('connect').addEventListener('click', connect);
    $('refresh-comp').addEventListener('click', refreshComp);
    // The warnings depend on the colour engine and space: show the ones that apply.
    ['colorspace', 'colour-engine'].forEach(function (id) {
      $(id).addEventListener('change', function () { saveSettings(); refreshComp(); });
    });
    $('refresh-jobs').addEventListener('click', refreshJobs);
    $('go').addEventListener('click', generate);
    $('add-lora').addEventListener('click', addLoraRow);
    $('model').addEventListener('change', function () {
      loraRows().forEach(function (row) { fillLoraMenu(row.children[0]); });
    });
    $('cancel').addEventListener('click', cancel);
    ['frame-start', 'frame-end'].forEach(function (id) {
      $(id).addEventListener('input', function () { rangeTouched = true; });
    });
    global.addEventListener('unload', function () { controller.close(); });

    cepApi.evalScript(bridge.buildLoadCall(root), function (text) {
      try {
        bridge.parseHostResult(text);
      } catch (e) {
        fail(e);
        return;
      }
      refreshComp();
      connect();
    });
  }

  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', init);
  else init();
})(window);
