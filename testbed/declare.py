"""One way to declare settings: a pydantic model whose fields carry type, bounds, default and
help; file formats (camelCase keys), CLI options and environment variables derive from it.

Used by the scenario model and the demo app, so a knob is written once and every front door
(scenario YAML, `testbed demoapp serve` flags, DEMO_* env vars, docs tables) follows it.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import typer
from pydantic import BaseModel, ConfigDict, Strict
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

# Strict scalars: YAML's `yes`, `"3"` or `2.5` for an integer are mistakes to report, not to
# coerce. A strict float still takes an int (`rate: 50`).
Int = Annotated[int, Strict()]
Num = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


@dataclass(frozen=True)
class Expected:
    """What an error message says a field should be, where its type does not say it well."""

    phrase: str


class Declared(BaseModel):
    """Base of every declared model: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


def marker(info: FieldInfo, kind: type[Any]) -> Any:
    """The first metadata object of `kind` on a field (e.g. Expected), or None."""
    return next((m for m in info.metadata if isinstance(m, kind)), None)


def _bounds(info: FieldInfo) -> tuple[Any, Any, bool]:
    lo: Any = None
    hi: Any = None
    exclusive = False
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo, exclusive = m.gt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
    return lo, hi, exclusive


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def is_model(tp: Any) -> bool:
    tp = _unwrap(tp)
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def nested_model(tp: Any) -> type[BaseModel] | None:
    """The model class a field holds (directly, as X | None, or as a list of X), else None."""
    tp = _unwrap(tp)
    if is_model(tp):
        return tp  # type: ignore[no-any-return]
    if get_origin(tp) in (tuple, list) and get_args(tp) and is_model(get_args(tp)[0]):
        return _unwrap(get_args(tp)[0])  # type: ignore[no-any-return]
    if get_origin(tp) in (Union, types.UnionType):
        for arg in get_args(tp):
            if is_model(arg):
                return _unwrap(arg)  # type: ignore[no-any-return]
    return None


def expected(info: FieldInfo) -> str:
    """The phrase an error message uses for what a field accepts."""
    mark = marker(info, Expected)
    if mark is not None:
        return str(mark.phrase)
    tp = _unwrap(info.annotation)
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(tp))
    if tp is bool:
        return "true or false"
    if is_model(tp):
        return "a mapping"
    noun = {int: "an integer", float: "a number", str: "a string"}.get(tp)
    if noun is None:
        return "a value of type " + getattr(tp, "__name__", str(tp))
    lo, hi, exclusive = _bounds(info)
    if lo is None and hi is None:
        return noun
    if hi is None:
        return f"{noun} {'>' if exclusive else '>='} {lo:g}"
    if lo is None:
        return f"{noun} <= {hi:g}"
    return f"{noun} {lo:g}-{hi:g}"


def show_default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        made = info.get_default(call_default_factory=True)
        return "{}" if is_model(info.annotation) or isinstance(made, dict) else "[]"
    value = info.default
    if value is None:
        return "null"
    if isinstance(value, tuple | list):  # items with their defaults, shown below the row
        return "[" + ", ".join("{}" if isinstance(v, BaseModel) else str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def env_name(prefix: str, field: str) -> str:
    return f"{prefix}{field.upper()}"


def typer_command(model: type[BaseModel], env_prefix: str,
                  run: Callable[[BaseModel], Any]) -> Callable[..., Any]:
    """A function typer can register whose options (flag, default, help, env var) are the
    model's fields: `--startup-delay-seconds` / DEMO_STARTUP_DELAY_SECONDS for a field
    `startup_delay_seconds`. Values are validated by the model, so bounds hold on the CLI too."""
    params = []
    for name, info in model.model_fields.items():
        tp = _unwrap(info.annotation)
        if get_origin(tp) is Literal:
            tp = str
        params.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=tp,
            default=typer.Option(info.get_default(call_default_factory=True),
                                 f"--{name.replace('_', '-')}",
                                 envvar=env_name(env_prefix, name),
                                 help=info.description or "")))

    def command(**values: Any) -> Any:
        by_alias = {model.model_fields[k].alias or k: v for k, v in values.items()}
        try:
            settings = model.model_validate(by_alias)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        return run(settings)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = run.__doc__
    return command
