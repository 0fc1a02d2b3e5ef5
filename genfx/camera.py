"""The one camera convention and every conversion into and out of it.

Canonical: world right-handed, Y up, scene units (Houdini metres). ``camera_to_world`` is 16 floats,
row-major, COLUMN-vector convention (``p_world = M @ [p_cam, 1]``, translation at [3], [7], [11]); the
camera looks down its local -Z with +X right and +Y up (Houdini / USD / OpenGL).

Pixels are continuous coordinates with the origin at the top-left corner of the image and y down, so
the centre of pixel (0, 0) is (0.5, 0.5). Formulas and sources: docs/camera.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt

Mat = npt.NDArray[np.float64]

# Flips camera-space Z: our RH -Z-forward camera -> the EXR/RenderMan LH +Z-forward camera.
_FLIP_Z = np.diag([1.0, 1.0, -1.0, 1.0])
# AE world/camera (Y down, Z into the screen) <-> Y-up RH: a 180 degree rotation about X.
_AE_S = np.diag([1.0, -1.0, -1.0])

# Houdini `focalunits` menu -> millimetres per unit.
FOCAL_UNITS_MM: dict[str, float] = {"mm": 1.0, "m": 1000.0, "um": 1e-3, "nm": 1e-6, "in": 25.4, "ft": 304.8}


class CameraError(ValueError):
    """A camera value is out of range; the message names the field path and the limit."""


@dataclass(frozen=True)
class CameraSample:
    """The camera at one frame (mirrors genfx.v1.CameraSample)."""

    frame: int
    camera_to_world: tuple[float, ...]
    focal_length_mm: float
    horizontal_aperture_mm: float
    vertical_aperture_mm: float = 0.0  # 0 => derived from the resolution and pixel aspect
    pixel_aspect: float = 1.0
    near_clip: float = 0.1
    far_clip: float = 10000.0

    def __post_init__(self) -> None:
        # Accept any sequence (list, ndarray row) but store plain floats so samples hash and compare.
        object.__setattr__(self, "camera_to_world", tuple(float(v) for v in self.camera_to_world))

    def matrix(self) -> Mat:
        """Camera-to-world as a (4, 4) float64 array (column-vector convention)."""
        return np.array(self.camera_to_world, dtype=np.float64).reshape(4, 4)

    def vertical_aperture(self, width: int, height: int) -> float:
        """Vertical film aperture in mm; derived from the resolution when not given."""
        if self.vertical_aperture_mm > 0:
            return self.vertical_aperture_mm
        return self.horizontal_aperture_mm * height / (width * self.pixel_aspect)


@dataclass(frozen=True)
class CameraTrack:
    """The shot camera: one sample (locked off) or one sample per frame."""

    width: int  # resolution the lens refers to
    height: int
    samples: tuple[CameraSample, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", tuple(self.samples))

    @cached_property
    def _by_frame(self) -> dict[int, CameraSample]:
        return {s.frame: s for s in self.samples}

    @property
    def is_static(self) -> bool:
        return len(self.samples) == 1

    def sample_at(self, frame: int) -> CameraSample:
        """The sample for ``frame``: the single sample of a static camera, else an exact frame match."""
        if not self.samples:
            raise KeyError(f"camera track has no samples (asked for frame {frame})")
        if self.is_static:
            return replace(self.samples[0], frame=frame)
        try:
            return self._by_frame[frame]
        except KeyError:
            raise KeyError(f"camera track has no sample for frame {frame}") from None


# ---------------------------------------------------------------------------------------------------
# Validation


# Plausible lens and scene values. Beyond them a camera is a typo or an attack, and past float32's range
# the EXR header (M44f, float attributes) would hold inf: refused here rather than written.
LENS_MM_RANGE = (1e-3, 1e5)  # focal length and film apertures, millimetres
PIXEL_ASPECT_RANGE = (0.1, 10.0)  # anamorphic 2.0 is the widest in use
MAX_SCENE_COORDINATE = 1e12  # |camera_to_world| entries and clip distances, scene units


def _check_positive(value: float, path: str, *, allow_zero: bool = False) -> None:
    if not math.isfinite(value):
        raise CameraError(f"{path}: must be a finite number (got {value})")
    if allow_zero and value < 0:
        raise CameraError(f"{path}: must be >= 0 (got {value:g})")
    if not allow_zero and value <= 0:
        raise CameraError(f"{path}: must be > 0 (got {value:g})")


def _check_range(value: float, path: str, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        raise CameraError(f"{path}: must be in [{low:g}, {high:g}]{unit} (got {value:g})")


def validate_sample(
    s: CameraSample, field: str = "camera", resolution: tuple[int, int] | None = None
) -> None:
    """Raise CameraError naming ``field``.<attribute> when ``s`` cannot drive a projection. With the
    image ``resolution`` (width, height), also when the frame's EXR header could not hold it."""
    path = f"{field}.camera_to_world"
    m = s.camera_to_world
    if len(m) != 16 or not all(math.isfinite(v) for v in m):
        raise CameraError(f"{path}: must hold 16 finite numbers")
    if any(abs(v) > MAX_SCENE_COORDINATE for v in m):
        raise CameraError(f"{path}: values must be within ±{MAX_SCENE_COORDINATE:g} (scene units)")
    mat = s.matrix()
    if not np.allclose(mat[3], (0.0, 0.0, 0.0, 1.0), rtol=0.0, atol=1e-9):
        raise CameraError(f"{path}: last row must be (0, 0, 0, 1) (column-vector convention, row-major)")
    if abs(float(np.linalg.det(mat[:3, :3]))) <= 1e-12:
        raise CameraError(f"{path}: matrix is singular")
    _check_positive(s.focal_length_mm, f"{field}.focal_length_mm")
    _check_positive(s.horizontal_aperture_mm, f"{field}.horizontal_aperture_mm")
    _check_positive(s.vertical_aperture_mm, f"{field}.vertical_aperture_mm", allow_zero=True)
    _check_positive(s.pixel_aspect, f"{field}.pixel_aspect")
    _check_positive(s.near_clip, f"{field}.near_clip")
    _check_positive(s.far_clip, f"{field}.far_clip")
    if s.far_clip <= s.near_clip:
        raise CameraError(f"{field}.far_clip: must be > near_clip ({s.near_clip:g}) (got {s.far_clip:g})")
    for name in ("focal_length_mm", "horizontal_aperture_mm"):
        _check_range(getattr(s, name), f"{field}.{name}", *LENS_MM_RANGE, " mm")
    if s.vertical_aperture_mm:
        _check_range(s.vertical_aperture_mm, f"{field}.vertical_aperture_mm", *LENS_MM_RANGE, " mm")
    _check_range(s.pixel_aspect, f"{field}.pixel_aspect", *PIXEL_ASPECT_RANGE)
    _check_range(s.far_clip, f"{field}.far_clip", 0.0, MAX_SCENE_COORDINATE, " scene units")
    if resolution is not None:
        _check_exr_header(s, *resolution, field)


def _check_exr_header(s: CameraSample, width: int, height: int, field: str) -> None:
    """Every camera value the frame's EXR header stores as float32 must be finite there."""
    with np.errstate(all="ignore"):
        vertical = np.float32(s.vertical_aperture(width, height))
        if not (np.isfinite(vertical) and vertical > 0):
            problem = "vertical aperture"
        elif not np.isfinite(world_to_camera_exr(s)).all():
            problem = "worldToCamera"
        elif not np.isfinite(world_to_ndc_exr(s, width, height)).all():
            problem = "worldToNDC"
        else:
            return
    raise CameraError(
        f"{field}: the EXR header's {problem} (float32) would not be finite; bring the lens and matrix"
        " values into a plausible range"
    )


def validate_track(track: CameraTrack, field: str = "camera") -> None:
    """Validate the resolution, every sample (``field.samples[i]``) and that frames are unique."""
    for name, value in (("width", track.width), ("height", track.height)):
        if value <= 0:
            raise CameraError(f"{field}.{name}: must be > 0 (got {value})")
    if not track.samples:
        raise CameraError(f"{field}.samples: must hold at least one sample")
    seen: set[int] = set()
    for i, s in enumerate(track.samples):
        validate_sample(s, f"{field}.samples[{i}]")
        if s.frame in seen:
            raise CameraError(f"{field}.samples[{i}].frame: frame {s.frame} appears twice")
        seen.add(s.frame)


# ---------------------------------------------------------------------------------------------------
# Houdini


def _as_mat4(values: Sequence[float], what: str) -> Mat:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size != 16:
        raise CameraError(f"{what}: must hold 16 numbers (got {arr.size})")
    return arr.reshape(4, 4)


def from_houdini(
    world_transform: Sequence[float],
    *,
    frame: int,
    focal: float,
    aperture: float,
    resx: int,
    resy: int,
    focal_units: str = "mm",
    aspect: float = 1.0,
    near: float = 0.1,
    far: float = 10000.0,
) -> CameraSample:
    """A Houdini OBJ camera -> CameraSample.

    ``world_transform`` is ``obj.worldTransformAtTime(t).asTuple()``: hou.Matrix4 is ROW-vector
    (translation in elements 12..14). THIS is the one place in GenFX where that is transposed into our
    column-vector convention; nothing else should transpose a Houdini matrix.
    """
    try:
        scale = FOCAL_UNITS_MM[focal_units]
    except KeyError:
        allowed = sorted(FOCAL_UNITS_MM)
        raise CameraError(f"focal_units: must be one of {allowed} (got {focal_units!r})") from None
    m = _as_mat4(world_transform, "world_transform").T  # row-vector -> column-vector
    # Houdini reads the aperture in focal units; only the ratio sets the FOV, so scale both.
    ap_mm = aperture * scale
    return CameraSample(
        frame=frame,
        camera_to_world=tuple(m.ravel().tolist()),
        focal_length_mm=focal * scale,
        horizontal_aperture_mm=ap_mm,
        vertical_aperture_mm=ap_mm * resy / (resx * aspect),
        pixel_aspect=aspect,
        near_clip=near,
        far_clip=far,
    )


def houdini_project(
    world_transform: Sequence[float],
    *,
    focal: float,
    aperture: float,
    resx: int,
    resy: int,
    aspect: float,
    point: Sequence[float],
) -> tuple[float, float]:
    """Houdini's own projection (cameralenses docs), independent of CameraSample: world -> pixels."""
    m_row = _as_mat4(world_transform, "world_transform")
    p = np.append(np.asarray(point, dtype=np.float64), 1.0) @ np.linalg.inv(m_row)
    x, y, z = p[0] / p[3], p[1] / p[3], p[2] / p[3]
    apy = resy * aperture / (resx * aspect)
    ndc_x = 0.5 + (focal / aperture) * x / (-z)
    ndc_y = 0.5 + (focal / apy) * y / (-z)  # NDC origin bottom-left
    return float(ndc_x * resx), float((1.0 - ndc_y) * resy)


# ---------------------------------------------------------------------------------------------------
# After Effects (pixels, +X right, +Y down, +Z into the screen; camera looks down its local +Z)


def _euler_xyz(deg: Sequence[float]) -> Mat:
    """AE's rotation triple composed Rx @ Ry @ Rz (Z applied first)."""
    ax, ay, az = (math.radians(float(v)) for v in deg)
    cx, sx = math.cos(ax), math.sin(ax)
    cy, sy = math.cos(ay), math.sin(ay)
    cz, sz = math.cos(az), math.sin(az)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    result: Mat = rx @ ry @ rz
    return result


def ae_camera_to_world(
    position: Sequence[float],
    point_of_interest: Sequence[float] | None,
    orientation_deg: Sequence[float] = (0.0, 0.0, 0.0),
    rotation_deg: Sequence[float] = (0.0, 0.0, 0.0),
) -> tuple[float, ...]:
    """AE's camera transform stack T(P) . R_lookAt(POI) . R(orientation) . R(rotation), in AE world.

    Returns 16 floats, row-major, column-vector; the columns are the camera's AE x/y/z axes and position
    (what sampling ``toWorld`` in ExtendScript gives). ``point_of_interest=None`` = a one-node camera.
    """
    p = np.asarray(position, dtype=np.float64)
    rot = np.eye(3)
    if point_of_interest is not None:
        z = np.asarray(point_of_interest, dtype=np.float64) - p
        x = np.cross((0.0, 1.0, 0.0), z)
        if np.linalg.norm(z) < 1e-12 or np.linalg.norm(x) < 1e-12 * np.linalg.norm(z):
            raise CameraError("point_of_interest: must differ from position and not lie straight above/below")
        z /= np.linalg.norm(z)
        x /= np.linalg.norm(x)
        rot = np.column_stack((x, np.cross(z, x), z))
    rot = rot @ _euler_xyz(orientation_deg) @ _euler_xyz(rotation_deg)
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = p
    return tuple(m.ravel().tolist())


def ae_default_camera(
    comp_width: int, comp_height: int, pixel_aspect: float = 1.0
) -> tuple[tuple[float, ...], float]:
    """AE's default camera of a comp without one: the 50 mm preset on 36 mm film across the comp's width
    in square pixels (``thisComp.width * thisComp.pixelAspect``, as Adobe's own expression example has it),
    at (w/2, h/2, -zoom) looking at the comp centre. Returns (camera-to-world in AE square-pixel world,
    zoom in px)."""
    w = comp_width * pixel_aspect
    zoom = w * 50.0 / 36.0
    return ae_camera_to_world((w / 2, comp_height / 2, -zoom), (w / 2, comp_height / 2, 0.0)), zoom


def ae_comp_to_square(point_ae: Sequence[float], pixel_aspect: float = 1.0) -> npt.NDArray[np.float64]:
    """A point in AE comp coordinates (what positions and ``toWorld`` give: x in the comp's own, possibly
    non-square, pixels) -> AE's 3D world in square pixels, where cameras and zoom live."""
    p: npt.NDArray[np.float64] = np.asarray(point_ae, dtype=np.float64).copy()
    p[0] *= pixel_aspect
    return p


def ae_project(
    camera_to_world_ae: Sequence[float],
    zoom_px: float,
    comp_width: int,
    comp_height: int,
    point_ae: Sequence[float],
    pixel_aspect: float = 1.0,
) -> tuple[float, float]:
    """AE's own projection of a point (comp coordinates) to comp pixels, through a camera in the square-pixel
    world: c = M^-1 (x * pa, y, z); u = W/2 + zoom * c_x / (pa * c_z), v = H/2 + zoom * c_y / c_z."""
    m = _as_mat4(camera_to_world_ae, "camera_to_world_ae")
    p = np.linalg.inv(m) @ np.append(ae_comp_to_square(point_ae, pixel_aspect), 1.0)
    x, y, z = p[0], p[1], p[2]
    return (
        float(comp_width / 2 + zoom_px * x / (pixel_aspect * z)),
        float(comp_height / 2 + zoom_px * y / z),
    )


def _ae_square_to_world(
    p_square: npt.NDArray[np.float64],
    comp_width: int,
    comp_height: int,
    units_per_pixel: float,
    pixel_aspect: float,
) -> npt.NDArray[np.float64]:
    origin = np.array([comp_width * pixel_aspect / 2, comp_height / 2, 0.0])
    result: npt.NDArray[np.float64] = units_per_pixel * (_AE_S @ (p_square - origin))
    return result


def ae_point_to_world(
    point_ae: Sequence[float],
    comp_width: int,
    comp_height: int,
    units_per_pixel: float = 0.01,
    pixel_aspect: float = 1.0,
) -> npt.NDArray[np.float64]:
    """An AE point (comp coordinates) -> our world: to square pixels, recentre on the comp centre, flip
    Y and Z, scale."""
    square = ae_comp_to_square(point_ae, pixel_aspect)
    return _ae_square_to_world(square, comp_width, comp_height, units_per_pixel, pixel_aspect)


def from_after_effects(
    camera_to_world_ae: Sequence[float],
    *,
    frame: int,
    zoom_px: float,
    comp_width: int,
    comp_height: int,
    pixel_aspect: float = 1.0,
    units_per_pixel: float = 0.01,
    film_width_mm: float = 36.0,
    near: float = 0.1,
    far: float = 10000.0,
) -> CameraSample:
    """An AE camera (world matrix in AE's square-pixel world + zoom) -> CameraSample in our Y-up world.

    The same S = diag(1,-1,-1) converts the world and the camera-local axes, so R = S R_ae S. With
    non-square pixels AE's 3D world is in square pixels (x = comp x * pixel aspect): the comp centre is
    (W * pa / 2, H / 2) there and the film spans W * pa pixels (docs/camera.md).
    """
    m_ae = _as_mat4(camera_to_world_ae, "camera_to_world_ae")
    m = np.eye(4)
    m[:3, :3] = _AE_S @ m_ae[:3, :3] @ _AE_S
    m[:3, 3] = _ae_square_to_world(m_ae[:3, 3], comp_width, comp_height, units_per_pixel, pixel_aspect)
    return CameraSample(
        frame=frame,
        camera_to_world=tuple(m.ravel().tolist()),
        # Zoom is in square pixels; the film spans the comp's width in square pixels.
        focal_length_mm=zoom_px * film_width_mm / (comp_width * pixel_aspect),
        horizontal_aperture_mm=film_width_mm,
        # Explicit, so the sample keeps the comp's frame even when read without the comp size.
        vertical_aperture_mm=film_width_mm * comp_height / (comp_width * pixel_aspect),
        pixel_aspect=pixel_aspect,
        near_clip=near,
        far_clip=far,
    )


# ---------------------------------------------------------------------------------------------------
# Projection and EXR matrices (our convention)


def project_to_pixel(
    sample: CameraSample, width: int, height: int, point_world: Sequence[float]
) -> tuple[float, float]:
    """World point -> continuous pixel coordinates (origin top-left, y down) through ``sample``."""
    p = np.linalg.inv(sample.matrix()) @ np.append(np.asarray(point_world, dtype=np.float64), 1.0)
    x, y, depth = p[0], p[1], -p[2]
    fx = sample.focal_length_mm / sample.horizontal_aperture_mm
    fy = sample.focal_length_mm / sample.vertical_aperture(width, height)
    return float((0.5 + fx * x / depth) * width), float((0.5 - fy * y / depth) * height)


def _f32(m: Mat) -> npt.NDArray[np.float32]:
    # C-contiguous float32: the binding writes M44f only for that, and misreads strided views.
    return np.ascontiguousarray(m, dtype=np.float32)


def world_to_camera_exr(sample: CameraSample) -> npt.NDArray[np.float32]:
    """OpenEXR ``worldToCamera``: row vectors, LH camera looking down +Z; (F . M^-1)^T as float32."""
    return _f32((_FLIP_Z @ np.linalg.inv(sample.matrix())).T)


def world_to_ndc_exr(sample: CameraSample, width: int, height: int) -> npt.NDArray[np.float32]:
    """OpenEXR ``worldToNDC``: ``[x,y,z,1] @ M``, divide by w -> NDC in [0, 1], y down (times W, H = px)."""
    fx = sample.focal_length_mm / sample.horizontal_aperture_mm
    fy = sample.focal_length_mm / sample.vertical_aperture(width, height)
    near, far = sample.near_clip, sample.far_clip
    proj = np.array(
        [
            [fx, 0.0, 0.5, 0.0],
            [0.0, -fy, 0.5, 0.0],
            [0.0, 0.0, far / (far - near), -far * near / (far - near)],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )
    return _f32((proj @ _FLIP_Z @ np.linalg.inv(sample.matrix())).T)


def camera_to_world_from_exr(world_to_camera: npt.ArrayLike) -> Mat:
    """Inverse of world_to_camera_exr: an EXR ``worldToCamera`` (any renderer) -> our camera-to-world."""
    w = np.asarray(world_to_camera, dtype=np.float64).reshape(4, 4)
    return np.asarray(np.linalg.inv(_FLIP_Z @ w.T), dtype=np.float64)
