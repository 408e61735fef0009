"""The test DNS that serves what Route 53 holds (certfleet.testing.pebble.Route53Bridge), for tests."""

from __future__ import annotations

from certfleet.testing.pebble import Route53Bridge, bare_zone_id

__all__ = ["Route53Bridge", "bare_zone_id"]
