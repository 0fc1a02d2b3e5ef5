/*
 * GenFX host script: the manifest's <ScriptPath>. ExtendScript (ES3), After Effects 24+.
 *
 * CEP loads this file into AE's ExtendScript engine at panel start-up. It only defines the loader:
 * Adobe's cookbook warns that $.fileName is unreliable in the first-loaded script, so the panel
 * passes the extension folder (from CSInterface's SystemPath.EXTENSION) and the loader evaluates the
 * rest in order: the JSON codec, the shared ES3 modules (also used by the panel), the host API.
 */
function genfxLoad(extensionRoot) {
  var files = ["host/lib/json.js", "shared/camera.js", "shared/request.js", "host/genfx_host.jsx"];
  var root = String(extensionRoot).replace(/[\\\/]+$/, "");
  var i, f;
  for (i = 0; i < files.length; i++) {
    f = new File(root + "/" + files[i]);
    if (!f.exists) return '{"ok":false,"error":"GenFX: missing ' + files[i] + ' under the extension folder"}';
    $.evalFile(f);
  }
  return '{"ok":true,"value":"loaded"}';
}
