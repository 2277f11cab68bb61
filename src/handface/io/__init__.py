"""Reading and writing: meshes (PLY), images, and atomic output folders."""

from handface.io.files import atomic_output_dir, atomic_write_bytes
from handface.io.mesh import load_ply, save_ply

__all__ = ["atomic_output_dir", "atomic_write_bytes", "load_ply", "save_ply"]
