"""Old path of the template checks' CDK plugin, kept until fleet.py and group.py import ``certfleet.checks.plugin``."""

from certfleet.checks.plugin import PlacementChecks

__all__ = ["PlacementChecks"]
