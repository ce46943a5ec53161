"""The serving image's own code: model fetcher, TF Serving entrypoint and readiness check.

Everything the operator must agree with (ports, paths, env var names, exit codes) comes from
`modelserve.contract`; this package only reads it.
"""
