"""Consumer extraction, one module per service family: each reads certificate uses and TLS settings, judging nothing.

``EXTRACTORS`` maps every consumer resource type to its extractor.
"""

from __future__ import annotations

from certfleet.checks.extract import amplify, apigateway, appsync, beanstalk, cloudfront, cognito, elb, transfer
from certfleet.checks.extract.base import CertificateUse, Extracted, Extractor, Resource, TlsSetting

EXTRACTORS: dict[str, Extractor] = {
    **cloudfront.EXTRACTORS, **apigateway.EXTRACTORS, **elb.EXTRACTORS, **beanstalk.EXTRACTORS,
    **amplify.EXTRACTORS, **transfer.EXTRACTORS, **cognito.EXTRACTORS, **appsync.EXTRACTORS,
}

__all__ = ["EXTRACTORS", "CertificateUse", "Extracted", "Extractor", "Resource", "TlsSetting"]
