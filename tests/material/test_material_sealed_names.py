"""Sealed key files: the name a key is bound to (a wildcard certificate's own name, no pattern), and files that
are not sealed keys (FIFOs, devices, huge files) refused before they are read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certfleet.material.findings import MaterialError
from certfleet.material.sealed import CONTEXT_KEY, SEALED_FILE_LIMIT, SealedKey, encryption_context


@pytest.mark.parametrize("name", ["www.example.com", "*.example.com", "wildcard.example.com", "a" * 128])
def test_certificate_names_bind_a_sealed_key(name: str) -> None:
    assert encryption_context(name) == {CONTEXT_KEY: name}


@pytest.mark.parametrize("name", ["", "a*b.example.com", "**.example.com", "*example.com", "www.*.example.com",
                                  "www example.com", "www.example.com\n", "a" * 129])
def test_names_that_are_not_one_certificate_name_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="must be 1-128 characters"):
        encryption_context(name)


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_a_sealed_key_file_that_is_not_one_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "www.example.com.key.sealed"
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes: reading it would block synth forever
    elif kind == "huge":
        path.write_bytes(b" " * (SEALED_FILE_LIMIT + 1))
    else:
        path = Path("/dev/zero")  # reading it would exhaust memory
    with pytest.raises(MaterialError) as caught:
        SealedKey.from_file(path)
    assert caught.value.finding.subject == str(path) and caught.value.finding.is_error
