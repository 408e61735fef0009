"""The `certfleet` command. Imports material, rules and boto3 lazily; never aws_cdk."""
