"""What every schema of a file the tool reads back shares (model.json, run.json, results.jsonl):
strict pydantic models, bounded number types, and the first problem as one line naming the field.

A file written by hand or damaged must fail where it is read, in one line, not as a traceback deep
in scoring or, worse, be used: a NaN threshold flags nothing, a string where a number goes stops a
report half-way. Unknown extra keys are ignored unless a model says otherwise (later versions may
add some)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Finite = Annotated[float, Field(allow_inf_nan=False)]
Bounded = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]  # a score or threshold
NonNegative = Annotated[float, Field(allow_inf_nan=False, ge=0)]
Count = Annotated[int, Field(ge=0)]
Modes = Literal["fast", "refine", "seed"]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


def first_problem(model: type[BaseModel], raw: object) -> str | None:
    """None when `raw` has the model's shape, else the first problem in one line: where, and what."""
    try:
        model.model_validate(raw)
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return None
