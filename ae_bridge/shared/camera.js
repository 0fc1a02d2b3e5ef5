/*
 * GenfxCamera: After Effects camera -> the GenFX wire camera (genfx.v1.CameraSample). ES3.
 *
 * Loaded three ways, so it stays plain ECMAScript 3 with one global and no module system:
 *   - by the ExtendScript host ($.evalFile, see host/index.jsx),
 *   - by the CEP panel (<script src="../shared/camera.js">),
 *   - by Node (node/es3.js evaluates it and returns the global; the tests use that).
 *
 * Conventions (the same as genfx/camera.py, tested against the same golden numbers):
 *   AE world: pixels, +X right, +Y down, +Z into the screen, origin at the comp's top-left corner.
 *   AE camera: looks down its local +Z, +X right, +Y down; zoom = lens to image plane in comp pixels.
 *   Wire (genfx.v1): right-handed, Y up, scene units; camera looks down -Z, +X right, +Y up.
 *     camera_to_world: 16 numbers, row-major, COLUMN-vector (p_world = M . [p_cam, 1]), translation
 *     at [3], [7], [11].
 *   AE -> wire: S = diag(1, -1, -1) applied to world and camera axes (R = S . R_ae . S), positions
 *   recentred on the comp centre and scaled by unitsPerPixel (0.01: 1 px = 1 cm when 1 unit = 1 m);
 *   focal_length_mm = zoom * filmWidthMm / (compWidth * pixelAspect) with the 36 mm film width convention.
 *   Non-square pixels: comp coordinates (positions, toWorld) count x in the comp's pixels; AE's 3D world,
 *   where camera matrices and zoom live, is in square pixels (x * pixelAspect), as Adobe's default-camera
 *   expression (thisComp.width * thisComp.pixelAspect) has it.
 */
var GenfxCamera = (function () {
  var FILM_WIDTH_MM = 36.0;
  var DEFAULT_FOCAL_MM = 50.0;
  var UNITS_PER_PIXEL = 0.01;
  var NEAR_CLIP = 0.1;
  var FAR_CLIP = 10000.0;
  var DEG = Math.PI / 180.0;

  function fail(message) {
    throw new Error("GenfxCamera: " + message);
  }

  function isArrayLike(v) {
    // Cross-realm safe (arrays from AE, from another vm context, or from the panel).
    return Object.prototype.toString.call(v) === "[object Array]";
  }

  /** @param {any} v @param {number} n @param {string} what @returns {number[]} */
  function vec(v, n, what) {
    var out = [], i;
    if (!isArrayLike(v) || v.length < n) fail(what + ": must hold " + n + " numbers");
    for (i = 0; i < n; i++) {
      out.push(Number(v[i]));
      if (!isFinite(out[i])) fail(what + ": must hold finite numbers");
    }
    return out;
  }

  /** 3x3 matrices are arrays of 3 rows. @returns {number[][]} */
  function mul3(a, b) {
    var r = [[0, 0, 0], [0, 0, 0], [0, 0, 0]], i, j, k;
    for (i = 0; i < 3; i++) {
      for (j = 0; j < 3; j++) {
        for (k = 0; k < 3; k++) r[i][j] += a[i][k] * b[k][j];
      }
    }
    return r;
  }

  function cross(a, b) {
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  }

  function norm(a) {
    return Math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
  }

  function scale3(a, s) {
    return [a[0] * s, a[1] * s, a[2] * s];
  }

  function sub3(a, b) {
    return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  }

  /** AE's rotation triple (degrees) composed Rx . Ry . Rz (Z applied first), as AE does. */
  function eulerXYZ(deg) {
    var d = vec(deg, 3, "rotation");
    var ax = d[0] * DEG, ay = d[1] * DEG, az = d[2] * DEG;
    var cx = Math.cos(ax), sx = Math.sin(ax), cy = Math.cos(ay), sy = Math.sin(ay);
    var cz = Math.cos(az), sz = Math.sin(az);
    var rx = [[1, 0, 0], [0, cx, -sx], [0, sx, cx]];
    var ry = [[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]];
    var rz = [[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]];
    return mul3(mul3(rx, ry), rz);
  }

  /** 4x4 from a 3x3 rotation/basis and a translation; row-major, column-vector. @returns {number[]} */
  function compose(rot, t) {
    return [
      rot[0][0], rot[0][1], rot[0][2], t[0],
      rot[1][0], rot[1][1], rot[1][2], t[1],
      rot[2][0], rot[2][1], rot[2][2], t[2],
      0, 0, 0, 1
    ];
  }

  /** @returns {number[]} a * b, both 16 numbers row-major. */
  function mul4(a, b) {
    var r = [], i, j, k, s;
    for (i = 0; i < 4; i++) {
      for (j = 0; j < 4; j++) {
        s = 0;
        for (k = 0; k < 4; k++) s += a[i * 4 + k] * b[k * 4 + j];
        r.push(s);
      }
    }
    return r;
  }

  /** General 4x4 inverse (Gauss-Jordan, partial pivoting). @returns {number[]} */
  function invert4(m) {
    /** @type {number[][]} */
    var a = [];
    /** @type {number[][]} */
    var inv = [];
    var i, j, k, p, best, tmp, f;
    if (!isArrayLike(m) || m.length !== 16) fail("matrix: must hold 16 numbers");
    for (i = 0; i < 4; i++) {
      a.push([]);
      inv.push([]);
      for (j = 0; j < 4; j++) {
        a[i].push(Number(m[i * 4 + j]));
        inv[i].push(i === j ? 1 : 0);
      }
    }
    for (k = 0; k < 4; k++) {
      p = k;
      best = Math.abs(a[k][k]);
      for (i = k + 1; i < 4; i++) {
        if (Math.abs(a[i][k]) > best) {
          best = Math.abs(a[i][k]);
          p = i;
        }
      }
      if (!(best > 1e-300)) fail("matrix: is singular");
      tmp = a[k]; a[k] = a[p]; a[p] = tmp;
      tmp = inv[k]; inv[k] = inv[p]; inv[p] = tmp;
      f = a[k][k];
      for (j = 0; j < 4; j++) {
        a[k][j] /= f;
        inv[k][j] /= f;
      }
      for (i = 0; i < 4; i++) {
        if (i !== k) {
          f = a[i][k];
          if (f !== 0) {
            for (j = 0; j < 4; j++) {
              a[i][j] -= f * a[k][j];
              inv[i][j] -= f * inv[k][j];
            }
          }
        }
      }
    }
    /** @type {number[]} */
    var out = [];
    for (i = 0; i < 4; i++) for (j = 0; j < 4; j++) out.push(inv[i][j]);
    return out;
  }

  /** M . [p, 1] (column-vector). @returns {number[]} */
  function transformPoint(m, p) {
    var q = vec(p, 3, "point"), r = [], i;
    for (i = 0; i < 3; i++) r.push(m[i * 4] * q[0] + m[i * 4 + 1] * q[1] + m[i * 4 + 2] * q[2] + m[i * 4 + 3]);
    return r;
  }

  /**
   * AE's camera (or null layer) transform stack in AE world: T(position) . R_lookAt(POI) .
   * R(orientation) . R(rotation). pointOfInterest null = a one-node camera (no look-at).
   * Columns of the result are the camera's AE x/y/z axes and its position: what `toWorld` gives.
   * @param {number[]} position @param {number[]|null} pointOfInterest
   * @param {number[]=} orientationDeg @param {number[]=} rotationDeg @returns {number[]}
   */
  function aeCameraToWorld(position, pointOfInterest, orientationDeg, rotationDeg) {
    var p = vec(position, 3, "position");
    var rot = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
    if (pointOfInterest !== null && pointOfInterest !== undefined) {
      var z = sub3(vec(pointOfInterest, 3, "point_of_interest"), p);
      var x = cross([0, 1, 0], z);
      var nz = norm(z), nx = norm(x);
      if (nz < 1e-12 || nx < 1e-12 * nz) {
        fail("point_of_interest: must differ from position and not lie straight above/below");
      }
      z = scale3(z, 1 / nz);
      x = scale3(x, 1 / nx);
      var y = cross(z, x);
      rot = [[x[0], y[0], z[0]], [x[1], y[1], z[1]], [x[2], y[2], z[2]]];
    }
    rot = mul3(mul3(rot, eulerXYZ(orientationDeg || [0, 0, 0])), eulerXYZ(rotationDeg || [0, 0, 0]));
    return compose(rot, p);
  }

  /** A point in comp coordinates -> AE's square-pixel 3D world (x * pixelAspect). @returns {number[]} */
  function compToSquare(pointAe, pixelAspect) {
    var p = vec(pointAe, 3, "point");
    return [p[0] * (pixelAspect || 1), p[1], p[2]];
  }

  /**
   * A camera-to-world matrix (square-pixel world) from four `toWorld` samples in comp coordinates: the
   * camera origin and the points one pixel along its local x, y and z. The axes are normalised (a scaled
   * parent scales them, but AE's projection ignores that scale). @returns {number[]}
   */
  function matrixFromToWorld(origin, xPoint, yPoint, zPoint, pixelAspect) {
    var o = compToSquare(origin, pixelAspect);
    var axes = [
      sub3(compToSquare(xPoint, pixelAspect), o),
      sub3(compToSquare(yPoint, pixelAspect), o),
      sub3(compToSquare(zPoint, pixelAspect), o)
    ];
    var i, n;
    for (i = 0; i < 3; i++) {
      n = norm(axes[i]);
      if (!(n > 1e-12)) fail("toWorld samples: camera axis " + i + " has zero length (is the expression failing?)");
      axes[i] = scale3(axes[i], 1 / n);
    }
    return compose(
      [[axes[0][0], axes[1][0], axes[2][0]], [axes[0][1], axes[1][1], axes[2][1]], [axes[0][2], axes[1][2], axes[2][2]]],
      o
    );
  }

  /**
   * AE's own projection of a point (comp coordinates) to comp pixels through a camera in the square-pixel
   * world: c = M^-1 (x * pa, y, z); u = W/2 + zoom * c_x / (pa * c_z), v = H/2 + zoom * c_y / c_z.
   */
  function aeProject(cameraToWorldAe, zoomPx, compWidth, compHeight, pointAe, pixelAspect) {
    var pa = pixelAspect || 1;
    var p = transformPoint(invert4(cameraToWorldAe), compToSquare(pointAe, pa));
    return [compWidth / 2 + zoomPx * p[0] / (pa * p[2]), compHeight / 2 + zoomPx * p[1] / p[2]];
  }

  function squareToWorld(p, compWidth, compHeight, unitsPerPixel, pixelAspect) {
    var s = unitsPerPixel === undefined ? UNITS_PER_PIXEL : unitsPerPixel;
    var cx = compWidth * (pixelAspect || 1) / 2;
    return [s * (p[0] - cx), -s * (p[1] - compHeight / 2), -s * p[2]];
  }

  /** An AE point (comp coordinates) -> wire world: square pixels, recentre on the comp centre, flip Y and Z, scale. */
  function aePointToWorld(pointAe, compWidth, compHeight, unitsPerPixel, pixelAspect) {
    return squareToWorld(compToSquare(pointAe, pixelAspect), compWidth, compHeight, unitsPerPixel, pixelAspect);
  }

  /** Focal length in mm of an AE zoom (px), with the 36 mm film across the comp's width in square pixels. */
  function zoomToFocalMm(zoomPx, compWidth, filmWidthMm, pixelAspect) {
    return zoomPx * (filmWidthMm || FILM_WIDTH_MM) / (compWidth * (pixelAspect || 1));
  }

  /**
   * AE's default camera (the 50 mm preset on 36 mm film) for a comp without an active camera: the film
   * spans thisComp.width * thisComp.pixelAspect, the camera sits at the comp centre, -zoom.
   */
  function aeDefaultCamera(compWidth, compHeight, pixelAspect) {
    var w = compWidth * (pixelAspect || 1);
    var zoom = w * DEFAULT_FOCAL_MM / FILM_WIDTH_MM;
    return {
      matrix: aeCameraToWorld([w / 2, compHeight / 2, -zoom], [w / 2, compHeight / 2, 0]),
      zoom: zoom
    };
  }

  function positive(value, what) {
    var v = Number(value);
    if (!isFinite(v) || v <= 0) fail(what + ": must be > 0 (got " + value + ")");
    return v;
  }

  /**
   * An AE camera (matrix in AE's square-pixel world + zoom) -> a genfx.v1.CameraSample (proto field names).
   * opts: frame, zoom, compWidth, compHeight, [pixelAspect=1], [unitsPerPixel=0.01],
   *       [filmWidthMm=36], [near=0.1], [far=10000].
   * @returns {{frame: number, camera_to_world: number[], focal_length_mm: number,
   *   horizontal_aperture_mm: number, vertical_aperture_mm: number, pixel_aspect: number,
   *   near_clip: number, far_clip: number}}
   */
  function fromAfterEffects(cameraToWorldAe, opts) {
    var m = vec(cameraToWorldAe, 16, "camera_to_world_ae");
    var w = positive(opts.compWidth, "compWidth");
    var h = positive(opts.compHeight, "compHeight");
    var zoom = positive(opts.zoom, "zoom");
    var pa = opts.pixelAspect === undefined ? 1.0 : positive(opts.pixelAspect, "pixelAspect");
    var film = opts.filmWidthMm === undefined ? FILM_WIDTH_MM : positive(opts.filmWidthMm, "filmWidthMm");
    var upp = opts.unitsPerPixel === undefined ? UNITS_PER_PIXEL : positive(opts.unitsPerPixel, "unitsPerPixel");
    var sgn = [1, -1, -1];
    var out = [], i, j;
    var t = squareToWorld([m[3], m[7], m[11]], w, h, upp, pa);
    for (i = 0; i < 3; i++) {
      for (j = 0; j < 3; j++) out.push(sgn[i] * m[i * 4 + j] * sgn[j]); // (S . R . S)[i][j]
      out.push(t[i]);
    }
    out.push(0, 0, 0, 1);
    return {
      frame: opts.frame,
      camera_to_world: out,
      focal_length_mm: zoom * film / (w * pa),
      horizontal_aperture_mm: film,
      // Explicit, so the sample keeps the comp's frame even when read without the comp size.
      vertical_aperture_mm: film * h / (w * pa),
      pixel_aspect: pa,
      near_clip: opts.near === undefined ? NEAR_CLIP : opts.near,
      far_clip: opts.far === undefined ? FAR_CLIP : opts.far
    };
  }

  /** Vertical aperture in mm of a wire sample (derived from the resolution when 0). */
  function verticalAperture(sample, width, height) {
    if (sample.vertical_aperture_mm > 0) return sample.vertical_aperture_mm;
    return sample.horizontal_aperture_mm * height / (width * (sample.pixel_aspect || 1));
  }

  /** Wire world point -> continuous pixel coordinates (origin top-left, y down) through a wire sample. */
  function projectToPixel(sample, width, height, pointWorld) {
    var p = transformPoint(invert4(sample.camera_to_world), pointWorld);
    var depth = -p[2];
    var fx = sample.focal_length_mm / sample.horizontal_aperture_mm;
    var fy = sample.focal_length_mm / verticalAperture(sample, width, height);
    return [(0.5 + fx * p[0] / depth) * width, (0.5 - fy * p[1] / depth) * height];
  }

  function near(a, b, tol) {
    return Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b));
  }

  /** True when every sample has the same matrix and lens (a locked-off camera: send one sample). */
  function isStatic(samples, tol) {
    var t = tol === undefined ? 1e-9 : tol, i, j, a, b;
    for (i = 1; i < samples.length; i++) {
      a = samples[0];
      b = samples[i];
      for (j = 0; j < 16; j++) if (!near(a.camera_to_world[j], b.camera_to_world[j], t)) return false;
      if (!near(a.focal_length_mm, b.focal_length_mm, t)) return false;
      if (!near(a.horizontal_aperture_mm, b.horizontal_aperture_mm, t)) return false;
      if (!near(a.vertical_aperture_mm, b.vertical_aperture_mm, t)) return false;
    }
    return true;
  }

  return {
    FILM_WIDTH_MM: FILM_WIDTH_MM,
    DEFAULT_FOCAL_MM: DEFAULT_FOCAL_MM,
    UNITS_PER_PIXEL: UNITS_PER_PIXEL,
    eulerXYZ: eulerXYZ,
    mul4: mul4,
    invert4: invert4,
    transformPoint: transformPoint,
    aeCameraToWorld: aeCameraToWorld,
    compToSquare: compToSquare,
    matrixFromToWorld: matrixFromToWorld,
    aeProject: aeProject,
    aePointToWorld: aePointToWorld,
    zoomToFocalMm: zoomToFocalMm,
    aeDefaultCamera: aeDefaultCamera,
    fromAfterEffects: fromAfterEffects,
    verticalAperture: verticalAperture,
    projectToPixel: projectToPixel,
    isStatic: isStatic
  };
})();
