"""Cache keys: one short, stable hash for every cached artefact (models, embeddings, real-data fingerprints).

Torch-free, so the data layer can use it. Changing the formula would orphan every cached file, so
a test pins it to the formula below.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def cache_key(obj: Any) -> str:
    """12 hex digits of the SHA-256 of ``obj`` as sorted-key JSON (non-JSON values via ``str``)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
