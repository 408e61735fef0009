"""Consumer extraction, one module per service family: each reads certificate uses and TLS settings, judging nothing.

``base`` holds the shapes (``Resource``, ``CertificateUse``, ``TlsSetting``, ``Extracted``); ``registry.EXTRACTORS``
maps every consumer resource type to its extractor. This ``__init__`` imports nothing (no package-level cycle).
"""
