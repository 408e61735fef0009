"""The reference app: `cdk synth -c env=demo`, or `-c pipeline=true` for dev → staging → prod.

Thin on purpose: the architectures live in certfleet.reference (run with `python -P`, see DESIGN.md).
"""

from aws_cdk import App

from certfleet.reference import build

app = App()
build(app)
app.synth()
