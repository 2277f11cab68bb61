"""Results taken out of handface: GLB files (glTF 2.0) for Blender, three.js and engines."""
