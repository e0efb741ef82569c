"""The SGLang programs of the bundled workloads (one module per workload)."""
