"""``GET /v1/models``: the upstream's models, in OpenAI's list shape."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import ModelDep
from app.protocol import ModelCard, ModelList
from app.routes.chat import ERROR_RESPONSES

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(model: ModelDep) -> ModelList:
    """The models the upstream serves (llama.cpp's extra keys are dropped)."""
    data = await model.list_models()
    cards = [
        ModelCard.model_validate(item)
        for item in data.get("data") or []
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]
    return ModelList(data=cards)
