"""The CLI's verbs whose handlers call :mod:`forgeml.api` (export, serve, verify, compress).

They sit in the CLI layer, above the API, so that no stage module imports the API or the CLI back.
"""
