"""The bundled tool specs, one JSON file per tool: a data package (`sgl_conveyor.tool_specs`
once installed), read through `sgl_conveyor.resources.tool_specs_dir()`."""
