"""The real tools of the bundled workloads, with the services and the sandbox behind them.

python (sandboxed REPL), search (FTS5 service over HTTP), plan (LLMCompiler-style steps),
get_local_news (argument validation), sql (read-only SQLite), calculator, and faulty (fault
injection for tests). Each is named by its spec in tool_specs/; importing this package starts
nothing: services and interpreters start on a tool's first call.
"""
