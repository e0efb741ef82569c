"""Running one tool call's units while its stream goes on: the scope (`call`), when a unit runs
(`policy`, `cost_model`, `dag`), where it runs (`executor`, `pool`, `ledger`), and its limits,
failures and record (`limits`, `clock`, `failures`, `timeline`). Nothing here reads a stream."""
