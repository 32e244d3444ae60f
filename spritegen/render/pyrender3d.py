"""The 3D renderer: cube, ellipsoid and square pyramid drawn headless with pyrender, antialiased.

Geometry (world units: the image spans [-0.5, 0.5] in x and y, so one unit is W pixels; see
docs/render3d.md for the same table and the reasons):

* Meshes are built once, centred on their volume centroid and scaled to **unit volume**, so that
  shapes have equal volume at equal scale (the 3D analogue of the 2D renderer's equal area).
  ``size = S_MAX · (0.5 + 0.5·scale)`` with ``S_MAX = 0.3`` scales each mesh uniformly; the cube's
  side is ``size``, as the 2D square's side is.
* cube: side 1. ellipsoid: an icosphere scaled to semi-axes in the ratio 1 : 0.7 : 0.4 along x, y,
  z (three distinct axes, so both rotations change the image). pyramid: a 4-section cone with base
  side b equal to its height h (the ratio that minimises the circumradius about the centroid at a
  given volume), apex along +y (up in the image at rest), centred on its volume centroid, h/4
  above the base.
* The centroid sits at ``x = -0.5 + R + pos_x·(1 - 2R)`` and ``y = 0.5 - R - pos_y·(1 - 2R)`` with
  R the largest circumradius of any mesh at scale 1 (the pyramid's) plus one pixel, so no shape
  leaves the image or touches its outermost pixels at any scale and rotation; pos_y = 0 is the top
  of the image, as in 2D.
* Orientation ``R = Ry(rotation_y) · Rx(rotation)``: turn about the world x axis (horizontal in the
  image) first, then about the world y axis (vertical in the image), both about the centroid.
* A fixed orthographic camera on the +z axis looks down -z: apparent size does not depend on
  position, so position and scale stay separate factors. Two directional lights (a key light from
  the upper left front, a weaker fill from the right) and some ambient light give every face a
  distinct, never black, shade. pyrender draws into a 4x multisampled framebuffer (MSAA).
"""

from __future__ import annotations

import math
import os
import platform
from importlib import metadata

import numpy as np
import trimesh

from spritegen.factors import FACTORS, SHAPE_INDEX, SYMMETRY_3D  # noqa: F401 (re-exported)
from spritegen.render import check_full_factors
from spritegen.render._pyrender_compat import close_offscreen, import_pyrender, open_offscreen
from spritegen.render.colour import hue_to_rgb

pyrender = import_pyrender()  # headless EGL unless PYOPENGL_PLATFORM says otherwise

RENDERER_NAME = "pyrender3d"
RENDERER_VERSION = "1"  # bump whenever the pixels for a given factor vector change
SHAPES = ("cube", "ellipsoid", "pyramid")
S_MAX = 0.3  # side of the unit-volume cube at scale 1, in image widths
ELLIPSOID_AXES = (1.0, 0.7, 0.4)  # semi-axis ratios along x, y, z
ELLIPSOID_SUBDIVISIONS = 3  # icosphere: 642 vertices, smooth at 64x64 and up to ~256x256
CAMERA_DISTANCE = 100.0  # far away, so the view vector barely changes across the image

# Lights, each as a vector v pointing towards the light whose length is its Lambert weight: a face
# with unit normal n gets linear brightness AMBIENT + sum of max(0, n . v) before pyrender's gamma
# of 1/2.2. Chosen so that the faces of an unrotated cube are clearly apart (linear top 0.72,
# left 0.46, front 0.37, right 0.22, bottom 0.10; 8-bit 219, 179, 163, 128, 89), nothing is
# darker than the ambient 0.06, and the brightest possible normal (0.87 plus a small highlight)
# does not clip.
KEY_LIGHT = (-0.4, 0.66, 0.24)  # from the upper left, slightly in front
FILL_LIGHT = (0.16, -0.04, 0.07)  # weak, from the right
AMBIENT = 0.06
ROUGHNESS = 0.8  # matte: highlights stay small, shading carries the orientation


def _unit_volume(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Centre ``mesh`` on its volume centroid and scale it to volume 1."""
    mesh.apply_translation(-mesh.center_mass)
    mesh.apply_scale(1.0 / mesh.volume ** (1.0 / 3.0))
    return mesh


def build_meshes() -> dict[str, trimesh.Trimesh]:
    """The three shapes as watertight trimeshes of unit volume centred on their centroids."""
    cube = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    ellipsoid = trimesh.creation.icosphere(subdivisions=ELLIPSOID_SUBDIVISIONS)
    ellipsoid.apply_scale(ELLIPSOID_AXES)
    # trimesh has no pyramid: a 4-section cone is one; its origin is the base centre, axis +z.
    # radius r gives a base side of r*sqrt(2); height = base side.
    pyramid = trimesh.creation.cone(radius=1.0, height=math.sqrt(2.0), sections=4)
    pyramid.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2, (1, 0, 0)))
    return {name: _unit_volume(m) for name, m in zip(SHAPES, (cube, ellipsoid, pyramid))}


def circumradii(meshes: dict[str, trimesh.Trimesh]) -> dict[str, float]:
    """Largest distance of any vertex from the centroid, per unit size."""
    return {name: float(np.linalg.norm(m.vertices, axis=1).max()) for name, m in meshes.items()}


def shape_size(scale: float | np.ndarray) -> float | np.ndarray:
    """World size (cube side, image widths) for a scale factor in [0, 1]."""
    return S_MAX * (0.5 + 0.5 * scale)


def _rotation(rotation: float, rotation_y: float) -> np.ndarray:
    """Ry(rotation_y) @ Rx(rotation), 3x3."""
    ca, sa = math.cos(rotation), math.sin(rotation)
    cb, sb = math.cos(rotation_y), math.sin(rotation_y)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
    ry = np.array([[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]])
    return ry @ rx


def _intensity(towards: tuple[float, float, float]) -> float:
    """pyrender light intensity giving the Lambert weight ``|towards|``.

    pyrender's metallic-roughness shader scales the diffuse term of a non-metal by
    (1 - 0.04) / pi, so intensity = |towards| * pi / 0.96.
    """
    return float(np.linalg.norm(towards)) * math.pi / 0.96


def _look_along(direction: np.ndarray) -> np.ndarray:
    """A 4x4 pose whose -z axis points along ``direction`` (how pyrender aims a light)."""
    z = -np.asarray(direction, dtype=np.float64)
    z /= np.linalg.norm(z)
    up = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = x, y, z
    return pose


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


class PyrenderRenderer:
    """One GL context and scene per object, reused for every frame; a pure function of the factors.

    Only poses, visibility and the base colour change between frames. Create one per worker
    process (GL contexts do not survive ``fork``) and ``close()`` it when done.
    """

    channels = 3

    def __init__(self, image_size: int = 64, coloured: bool = False) -> None:
        if int(image_size) < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
        self.image_size = int(image_size)
        self.coloured = bool(coloured)
        meshes = build_meshes()
        # one spare pixel, so that antialiased edges never reach the outermost row or column
        radius = max(circumradii(meshes).values())
        self._margin = float(radius * shape_size(1.0) + 1.0 / self.image_size)

        self._scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 1.0), ambient_light=(AMBIENT,) * 3)
        self._nodes = []
        self._materials = []
        for name in SHAPES:
            material = pyrender.MetallicRoughnessMaterial(
                baseColorFactor=(1.0, 1.0, 1.0, 1.0), metallicFactor=0.0, roughnessFactor=ROUGHNESS
            )
            # flat shading for the polyhedra (one normal per face), smooth for the ellipsoid
            mesh = pyrender.Mesh.from_trimesh(
                meshes[name], material=material, smooth=(name == "ellipsoid")
            )
            mesh.is_visible = False
            self._nodes.append(self._scene.add(mesh))
            # from_trimesh deep-copies the material: the copy on the primitive is the live one
            self._materials.append(mesh.primitives[0].material)

        camera = pyrender.OrthographicCamera(
            xmag=0.5, ymag=0.5, znear=CAMERA_DISTANCE - 2.0, zfar=CAMERA_DISTANCE + 2.0
        )
        cam_pose = np.eye(4)
        cam_pose[2, 3] = CAMERA_DISTANCE
        self._scene.add(camera, pose=cam_pose)
        for towards in (KEY_LIGHT, FILL_LIGHT):
            light = pyrender.DirectionalLight(color=(1.0, 1.0, 1.0), intensity=_intensity(towards))
            self._scene.add(light, pose=_look_along(-np.asarray(towards, dtype=np.float64)))

        self._renderer = open_offscreen(self.image_size, self.image_size)
        self._gl_strings: dict[str, str] | None = None

    def centre(self, pos_x: float, pos_y: float) -> tuple[float, float]:
        """World (x, y) of the centroid for position factors in [0, 1]."""
        travel = 1.0 - 2.0 * self._margin
        return (-0.5 + self._margin + pos_x * travel, 0.5 - self._margin - pos_y * travel)

    def pose(self, vector: np.ndarray) -> np.ndarray:
        """4x4 model matrix for one full factor vector."""
        pos_x, pos_y, scale, _shape, rotation, _hue, rotation_y = (float(v) for v in vector)
        m = np.eye(4)
        m[:3, :3] = _rotation(rotation, rotation_y) * shape_size(scale)
        m[0, 3], m[1, 3] = self.centre(pos_x, pos_y)
        return m

    def render(self, full: np.ndarray) -> np.ndarray:
        """(N, 7) float64 full factor vectors -> (N, W, W, 3) uint8 RGB images."""
        full = check_full_factors(full, FACTORS[SHAPE_INDEX].classes_3d)
        shapes = full[:, SHAPE_INDEX]
        if self._renderer is None:
            raise RuntimeError("this renderer has been closed")
        n, w = full.shape[0], self.image_size
        out = np.empty((n, w, w, 3), dtype=np.uint8)
        rgb = hue_to_rgb(full[:, 5]) if self.coloured else np.ones((n, 3))
        scene, nodes, materials = self._scene, self._nodes, self._materials
        for i in range(n):
            k = int(shapes[i])
            for j, node in enumerate(nodes):
                node.mesh.is_visible = j == k
            materials[k].baseColorFactor = (rgb[i, 0], rgb[i, 1], rgb[i, 2], 1.0)
            scene.set_pose(nodes[k], self.pose(full[i]))
            colour, _depth = self._renderer.render(scene)
            out[i] = colour
        return out

    def info(self) -> dict[str, str]:
        """Renderer, library and GL driver identity, recorded in the file's provenance."""
        if self._gl_strings is None:
            self._gl_strings = self._read_gl_strings()
        return {
            "renderer": RENDERER_NAME,
            "renderer_version": RENDERER_VERSION,
            "pyrender": _version("pyrender"),
            "trimesh": str(trimesh.__version__),
            "PyOpenGL": _version("PyOpenGL"),
            "numpy": np.__version__,
            "gl_platform": os.environ.get("PYOPENGL_PLATFORM", ""),
            **self._gl_strings,
            "machine": platform.machine(),
        }

    def _read_gl_strings(self) -> dict[str, str]:
        from OpenGL.GL import GL_RENDERER, GL_VENDOR, GL_VERSION, glGetString

        if self._renderer is None:
            raise RuntimeError("this renderer has been closed")
        self._renderer._platform.make_current()
        return {
            key: (glGetString(enum) or b"").decode("ascii", "replace")
            for key, enum in (
                ("gl_vendor", GL_VENDOR),
                ("gl_renderer", GL_RENDERER),
                ("gl_version", GL_VERSION),
            )
        }

    def close(self) -> None:
        """Release the GL context; safe to call twice."""
        if self._renderer is not None:
            close_offscreen(self._renderer)
            self._renderer = None

    def __enter__(self) -> PyrenderRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
