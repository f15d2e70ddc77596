"""Making scenes: CLEVR layout, the light-field rig, scene specs, supervised Blender render workers,
visibility from the index pass, and the pipeline that writes each scene atomically."""
