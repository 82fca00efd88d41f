"""Playground's legged robots without MuJoCo Menagerie: placeholder meshes, unchanged physics.

Playground ships each robot's MJCF but takes its meshes from a clone of MuJoCo Menagerie
that it downloads on first use (`mjx_env.ensure_menagerie_exists`). Where that clone is
missing and cannot be fetched (an offline cluster, this project's CI), `ensure_meshes`
writes a stand-in tree: every mesh file a robot's MJCF names becomes a small tetrahedron.

Physics is unchanged because the robots' mesh geoms are visual only (contype = conaffinity
= 0) and every body carries an explicit <inertial>, so no mass or inertia is computed from
a mesh. `physics_fingerprint` makes this checkable: a model compiled with stand-ins of two
different sizes must give identical masses, inertias and collision geometry (tested per
robot). Videos show the collision geometry instead of the meshes (`video.py` turns its group
on when stand-ins are in use).
"""

from __future__ import annotations

import os
import pathlib
import re
import struct

import numpy as np

# Each Playground robot module whose MJCF reads meshes from Menagerie: its folder there.
ROBOTS = {"go1": "unitree_go1", "g1": "unitree_g1", "h1": "unitree_h1", "t1": "booster_t1",
          "spot": "boston_dynamics_spot", "berkeley_humanoid": "berkeley_humanoid",
          "op3": "robotis_op3", "apollo": "apptronik_apollo"}
STANDIN_ENV = "REFLEX_MENAGERIE_STANDIN"  # where the stand-in tree goes (default: user cache)
_MESH_EXTENSIONS = (".stl", ".obj", ".msh")
_FILE_ATTR = re.compile(r'file="([^"]+)"')
_MESH_SCALE = re.compile(r'<mesh\b[^>]*\bscale="([^"]+)"')


def _playground_locomotion() -> pathlib.Path:
  from mujoco_playground._src import mjx_env  # pylint: disable=import-outside-toplevel
  return pathlib.Path(mjx_env.ROOT_PATH) / "locomotion"


def mesh_files(robot: str) -> list[str]:
  """The mesh file names (no folders) that `robot`'s Playground MJCFs name."""
  names = set()
  for xml in (_playground_locomotion() / robot / "xmls").glob("*.xml"):
    for path in _FILE_ATTR.findall(xml.read_text()):
      name = pathlib.PurePosixPath(path).name
      if name.lower().endswith(_MESH_EXTENSIONS):
        names.add(name)
  return sorted(names)


def _mesh_scale(robot: str) -> float:
  """The smallest mesh scale `robot`'s MJCFs set (Op3's meshes are in millimetres: 0.001)."""
  scales = [float(v) for xml in (_playground_locomotion() / robot / "xmls").glob("*.xml")
            for attr in _MESH_SCALE.findall(xml.read_text()) for v in attr.split()]
  return min(scales, default=1.0)


def _tetrahedron(scale: float) -> np.ndarray:
  """Four outward-facing triangles, [4, 3 vertices, 3]."""
  v = scale * np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
  return v[[[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]]


def _write_mesh(path: pathlib.Path, scale: float) -> None:
  """Writes the stand-in (unless `path` holds it already: an older tree is brought up to
  date, and a tree shared by parallel processes is not rewritten needlessly)."""
  tris = _tetrahedron(scale)
  if path.suffix.lower() == ".obj":
    verts = tris.reshape(-1, 3)
    lines = [f"v {x:g} {y:g} {z:g}" for x, y, z in verts]
    lines += [f"f {3 * i + 1} {3 * i + 2} {3 * i + 3}" for i in range(len(tris))]
    data = ("\n".join(lines) + "\n").encode()
  else:  # binary STL: header, count, then (normal, 3 vertices, attribute) per triangle
    body = b"".join(struct.pack("<12fH", 0, 0, 0, *t.reshape(-1), 0) for t in tris)
    data = b"\0" * 80 + struct.pack("<I", len(tris)) + body
  if path.exists() and path.read_bytes() == data:
    return
  # Written whole then renamed: parallel processes (test workers) never read half a file.
  tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
  tmp.write_bytes(data)
  os.replace(tmp, path)


def standin_root() -> pathlib.Path:
  default = pathlib.Path.home() / ".cache" / "reflex_jax" / "menagerie_standin"
  return pathlib.Path(os.environ.get(STANDIN_ENV, default))


def write_standin(root: pathlib.Path, scale: float = 0.01) -> pathlib.Path:
  """Writes the stand-in Menagerie tree for every robot in `ROBOTS` under `root`; each
  tetrahedron is `scale` metres once the robot's own mesh scale is applied (MuJoCo refuses
  meshes of too small a volume)."""
  for robot, folder in ROBOTS.items():
    assets = root / folder / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    for name in mesh_files(robot):
      _write_mesh(assets / name, scale / _mesh_scale(robot))
  return root


def using_standin() -> bool:
  from mujoco_playground._src import mjx_env  # pylint: disable=import-outside-toplevel
  return (pathlib.Path(mjx_env.MENAGERIE_PATH) / ".reflex_standin").exists()


def ensure_meshes() -> pathlib.Path:
  """Points Playground at Menagerie: its own clone if present, else the stand-in tree.

  Returns the folder in use. Never downloads: the stand-in replaces the clone that
  Playground would fetch from GitHub.
  """
  from mujoco_playground._src import mjx_env  # pylint: disable=import-outside-toplevel
  if pathlib.Path(mjx_env.MENAGERIE_PATH).exists():
    return pathlib.Path(mjx_env.MENAGERIE_PATH)
  root = write_standin(standin_root())
  (root / ".reflex_standin").touch()
  mjx_env.MENAGERIE_PATH = root
  return root


def physics_fingerprint(model) -> dict[str, np.ndarray]:
  """The model quantities a mesh could change if it took part in dynamics or contacts."""
  collides = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
  return {"body_mass": model.body_mass, "body_inertia": model.body_inertia,
          "body_ipos": model.body_ipos, "body_iquat": model.body_iquat,
          "collision_geom_size": model.geom_size[collides],
          "collision_geom_type": model.geom_type[collides],
          "collision_geom_pos": model.geom_pos[collides]}
