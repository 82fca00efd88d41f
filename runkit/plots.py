"""Figures both halves' reports draw: a grid of panels, saved as PNG and PDF. Matplotlib is
imported on first use (it takes a second), with the non-interactive Agg backend."""

from __future__ import annotations


def panel_grid(count: int, width: float, height: float, columns: int = 4):
  """(figure, axes): `count` panels of width × height inches, up to `columns` per row."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  cols = max(1, min(count, columns))
  rows = max(1, -(-count // cols))
  fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
  return fig, list(axes.ravel())


def save(fig, axes, used: int, path_stem: str, dpi: int = 120) -> list[str]:
  """Hides the panels past `used`, writes `path_stem`.png and .pdf; returns their paths."""
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  for ax in axes[used:]:
    ax.axis("off")
  fig.tight_layout()
  paths = [f"{path_stem}.png", f"{path_stem}.pdf"]
  for p in paths:
    fig.savefig(p, dpi=dpi)
  plt.close(fig)
  return paths
