"""The gates a stage passes, each an object with one entry point, `run(stage, status)`.

In the order a stage meets them: smoke checks, the flag ramp with its guards, contract tests,
pre-promotion metric checks, committee sign-off. Governance (the signed-off governance file) is
checked before the first stage and again before each production stage.
"""
