"""Every consumer resource type and its extractor."""

from __future__ import annotations

from certfleet.checks.extract import amplify, apigateway, appsync, beanstalk, cloudfront, cognito, elb, transfer
from certfleet.checks.extract.base import Extractor

EXTRACTORS: dict[str, Extractor] = {
    **cloudfront.EXTRACTORS, **apigateway.EXTRACTORS, **elb.EXTRACTORS, **beanstalk.EXTRACTORS,
    **amplify.EXTRACTORS, **transfer.EXTRACTORS, **cognito.EXTRACTORS, **appsync.EXTRACTORS,
}

__all__ = ["EXTRACTORS"]
