/*
 * GenfxJSON: a small JSON encoder/decoder in ECMAScript 3 for ExtendScript, which has no JSON object.
 * It never touches a global JSON (another script's polyfill could be loaded and differ), never uses
 * eval, and escapes U+2028/U+2029 so its output is also a valid JavaScript string literal body.
 *   GenfxJSON.stringify(value) -> string   (undefined/functions in objects are skipped, in arrays -> null;
 *                                           NaN/Infinity -> null, as JSON.stringify does)
 *   GenfxJSON.parse(text)      -> value    (strict RFC 8259; throws SyntaxError-like Error with position)
 */
var GenfxJSON = (function () {
  var ESC = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

  function hex4(code) {
    var h = code.toString(16);
    while (h.length < 4) h = "0" + h;
    return "\\u" + h;
  }

  function quote(s) {
    var out = '"', i, c, code;
    for (i = 0; i < s.length; i++) {
      c = s.charAt(i);
      code = s.charCodeAt(i);
      if (ESC.hasOwnProperty(c)) out += ESC[c];
      else if (code < 0x20 || code === 0x2028 || code === 0x2029 || code === 0x7f) out += hex4(code);
      else out += c;
    }
    return out + '"';
  }

  function kind(v) {
    return Object.prototype.toString.call(v);
  }

  function encode(v, stack) {
    var t = typeof v, parts, i, k, item;
    if (v === null) return "null";
    if (t === "string") return quote(v);
    if (t === "number") return isFinite(v) ? String(v) : "null";
    if (t === "boolean") return v ? "true" : "false";
    if (t === "undefined" || t === "function") return undefined;
    if (kind(v) === "[object String]") return quote(String(v));
    if (kind(v) === "[object Number]") return isFinite(Number(v)) ? String(Number(v)) : "null";
    if (kind(v) === "[object Boolean]") return v.valueOf() ? "true" : "false";
    if (kind(v) === "[object Date]") return quote(isFinite(v.getTime()) ? dateString(v) : "null");
    for (i = 0; i < stack.length; i++) {
      if (stack[i] === v) throw new Error("GenfxJSON.stringify: cyclic structure");
    }
    stack.push(v);
    parts = [];
    if (kind(v) === "[object Array]") {
      for (i = 0; i < v.length; i++) {
        item = encode(v[i], stack);
        parts.push(item === undefined ? "null" : item);
      }
      stack.pop();
      return "[" + parts.join(",") + "]";
    }
    for (k in v) {
      if (Object.prototype.hasOwnProperty.call(v, k)) {
        item = encode(v[k], stack);
        if (item !== undefined) parts.push(quote(k) + ":" + item);
      }
    }
    stack.pop();
    return "{" + parts.join(",") + "}";
  }

  function pad(n, w) {
    var s = String(n);
    while (s.length < w) s = "0" + s;
    return s;
  }

  function dateString(d) {
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1, 2) + "-" + pad(d.getUTCDate(), 2) + "T" +
      pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" + pad(d.getUTCSeconds(), 2) + "." +
      pad(d.getUTCMilliseconds(), 3) + "Z";
  }

  function stringify(value) {
    return encode(value, []);
  }

  // ---- parser: recursive descent over the string, no eval ----
  function parse(text) {
    var s = String(text), at = 0;

    function error(msg) {
      throw new Error("GenfxJSON.parse: " + msg + " at position " + at);
    }

    function white() {
      var c;
      while (at < s.length) {
        c = s.charAt(at);
        if (c === " " || c === "\t" || c === "\n" || c === "\r") at++;
        else break;
      }
    }

    function expect(word, value) {
      if (s.substr(at, word.length) !== word) error("unexpected token");
      at += word.length;
      return value;
    }

    function number() {
      var start = at;
      if (s.charAt(at) === "-") at++;
      if (s.charAt(at) === "0") at++;
      else if (s.charAt(at) >= "1" && s.charAt(at) <= "9") {
        while (s.charAt(at) >= "0" && s.charAt(at) <= "9") at++;
      } else error("bad number");
      if (s.charAt(at) === ".") {
        at++;
        if (!(s.charAt(at) >= "0" && s.charAt(at) <= "9")) error("bad number");
        while (s.charAt(at) >= "0" && s.charAt(at) <= "9") at++;
      }
      if (s.charAt(at) === "e" || s.charAt(at) === "E") {
        at++;
        if (s.charAt(at) === "+" || s.charAt(at) === "-") at++;
        if (!(s.charAt(at) >= "0" && s.charAt(at) <= "9")) error("bad number");
        while (s.charAt(at) >= "0" && s.charAt(at) <= "9") at++;
      }
      return Number(s.substring(start, at));
    }

    function string() {
      var out = "", c, code, h;
      at++; // opening quote
      while (at < s.length) {
        c = s.charAt(at);
        if (c === '"') {
          at++;
          return out;
        }
        if (c === "\\") {
          at++;
          c = s.charAt(at);
          if (c === "u") {
            h = s.substr(at + 1, 4);
            if (!/^[0-9a-fA-F]{4}$/.test(h)) error("bad unicode escape");
            out += String.fromCharCode(parseInt(h, 16));
            at += 5;
            continue;
          }
          if (c === "b") out += "\b";
          else if (c === "f") out += "\f";
          else if (c === "n") out += "\n";
          else if (c === "r") out += "\r";
          else if (c === "t") out += "\t";
          else if (c === '"' || c === "\\" || c === "/") out += c;
          else error("bad escape");
          at++;
          continue;
        }
        code = s.charCodeAt(at);
        if (code < 0x20) error("control character in string");
        out += c;
        at++;
      }
      error("unterminated string");
      return "";
    }

    function array() {
      var out = [];
      at++;
      white();
      if (s.charAt(at) === "]") {
        at++;
        return out;
      }
      while (true) {
        out.push(value());
        white();
        if (s.charAt(at) === "]") {
          at++;
          return out;
        }
        if (s.charAt(at) !== ",") error("expected ',' or ']'");
        at++;
      }
    }

    function object() {
      var out = {}, key;
      at++;
      white();
      if (s.charAt(at) === "}") {
        at++;
        return out;
      }
      while (true) {
        white();
        if (s.charAt(at) !== '"') error("expected a string key");
        key = string();
        white();
        if (s.charAt(at) !== ":") error("expected ':'");
        at++;
        out[key] = value();
        white();
        if (s.charAt(at) === "}") {
          at++;
          return out;
        }
        if (s.charAt(at) !== ",") error("expected ',' or '}'");
        at++;
      }
    }

    function value() {
      var c;
      white();
      c = s.charAt(at);
      if (c === "{") return object();
      if (c === "[") return array();
      if (c === '"') return string();
      if (c === "t") return expect("true", true);
      if (c === "f") return expect("false", false);
      if (c === "n") return expect("null", null);
      if (c === "-" || (c >= "0" && c <= "9")) return number();
      error(at >= s.length ? "unexpected end of input" : "unexpected character '" + c + "'");
      return null;
    }

    var result = value();
    white();
    if (at < s.length) error("trailing characters");
    return result;
  }

  return { stringify: stringify, parse: parse };
})();
