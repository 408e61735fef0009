"""Template checks: does every certificate consumer of a cloud assembly get a certificate it can use?

One module per job, standard library plus ``certfleet.material`` and ``certfleet.rules`` (never ``aws_cdk`` nor
``boto3``, except ``plugin``):

- ``finding``: the one ``Finding`` shape of material checks, template checks and limits.
- ``template``: small readers of template JSON (literal values, tags, the resource types certfleet writes).
- ``assembly``: ``StackTemplate`` and loading a ``cdk.out``.
- ``resolve``: what a certificate value resolves to (a literal ARN, a certfleet certificate, an ACM certificate).
- ``extract``: one module per service family, each extracting certificate uses and TLS settings, judging nothing.
- ``judgments``: one function per finding code.
- ``graph``: the map of an assembly (every consumer, every certfleet certificate, the findings per edge) and
  ``check_templates``.
- ``limits``: CloudFormation and IAM template limits.
- ``plugin``: ``PlacementChecks``, the CDK policy-validation plugin (imports ``aws_cdk``).

This ``__init__`` imports nothing, so ``certfleet.checks.finding`` stays free of every dependency.
"""
