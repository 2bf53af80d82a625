"""POST /evaluate (placeholder until the evaluation module lands)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
