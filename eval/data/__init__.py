"""The bundled workload data and the scripts that generate it (`python -m eval.data.generate`).

Every file here is generated deterministically from seeded tables written for this project; the
tools only read the generated files. Nothing here downloads anything.
"""
