"""A local stand-in for AWS for tests and scripts: a real moto_server, and a strict proxy in front of it.

Never imported by certfleet itself; needs ``moto[server]`` (a development dependency). No ``aws_cdk``.

    with MotoServer() as moto, StrictAWS(moto.url) as aws:
        os.environ["AWS_ENDPOINT_URL"] = aws.url      # every boto3 client now talks to the strict layer
"""

from certfleet.testing.moto import MotoServer, free_port
from certfleet.testing.strict import ACM_KEY_TYPES, AWSRefusal, Call, StrictAWS

__all__ = ["ACM_KEY_TYPES", "AWSRefusal", "Call", "MotoServer", "StrictAWS", "free_port"]
