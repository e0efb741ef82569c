"""The bundled workload data and the scripts that generate it
(`python -m sgl_conveyor.eval.data.generate`). Installed as `sgl_conveyor.eval.data`.

Every file here is generated deterministically from seeded tables written for this project; the
tools only read the generated files. Nothing here downloads anything.
"""
