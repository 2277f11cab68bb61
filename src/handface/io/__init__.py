"""Reading and writing: meshes (PLY), images, atomic output folders, and capture folders."""

from handface.io.capture_folder import load_capture, save_capture
from handface.io.files import atomic_output_dir, atomic_write_bytes
from handface.io.mesh import load_ply, save_ply

__all__ = [
    "atomic_output_dir",
    "atomic_write_bytes",
    "load_capture",
    "load_ply",
    "save_capture",
    "save_ply",
]
