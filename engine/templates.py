"""`{{...}}` templates (SPEC §4): compiled once per definition, rendered per run.

Rules follow NocoBase's `json-templates`: a string that is exactly one
placeholder yields the raw typed value; a mixed string interpolates (dates as ISO
8601, null as empty text); objects (keys too) and arrays are templated
recursively; `{{path:default}}` supplies a default when the path is missing; a
path crossing an array maps over its items (see `engine.paths.lookup`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.jsvalues import js_string, to_display_string
from engine.paths import MISSING, lookup

_PLACEHOLDER = re.compile(r"\{\{\s*([\w.$-]*)(?::([^}]*))?\s*\}\}")
_LOOSE = re.compile(r"\{\{(.*?)\}\}", re.S)


class TemplateError(ValueError):
    """A malformed `{{...}}` in a definition; the message names the bad text."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    text: str
    key: str
    segments: tuple[str, ...]
    default: str | None

    def resolve(self, scope: Mapping[str, Any], missing: Any = None) -> Any:
        value = lookup(scope, self.segments)
        if value is MISSING:
            return missing if self.default is None else self.default
        if callable(value):
            return value()
        return value


class Renderer(Protocol):
    @property
    def placeholders(self) -> tuple[Placeholder, ...]: ...

    def render(self, scope: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class Const:
    """A value without placeholders: rendered as itself (callers must not mutate it)."""

    value: Any
    placeholders: tuple[Placeholder, ...] = ()

    def render(self, scope: Mapping[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class Single:
    placeholder: Placeholder

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return (self.placeholder,)

    def render(self, scope: Mapping[str, Any]) -> Any:
        return self.placeholder.resolve(scope)


@dataclass(frozen=True, slots=True)
class Interpolated:
    parts: tuple[str | Placeholder, ...]
    placeholders: tuple[Placeholder, ...]

    def render(self, scope: Mapping[str, Any]) -> str:
        return "".join(
            part if isinstance(part, str) else to_display_string(part.resolve(scope))
            for part in self.parts
        )


@dataclass(frozen=True, slots=True)
class DictRenderer:
    items: tuple[tuple[Renderer, Renderer], ...]
    placeholders: tuple[Placeholder, ...]

    def render(self, scope: Mapping[str, Any]) -> dict[str, Any]:
        # Keys are text, as JS property keys are (String(key)).
        return {_key_text(key.render(scope)): value.render(scope) for key, value in self.items}


@dataclass(frozen=True, slots=True)
class ListRenderer:
    items: tuple[Renderer, ...]
    placeholders: tuple[Placeholder, ...]

    def render(self, scope: Mapping[str, Any]) -> list[Any]:
        return [item.render(scope) for item in self.items]


def _key_text(value: Any) -> str:
    return value if isinstance(value, str) else js_string(value)


def parse_placeholders(text: str) -> list[Placeholder]:
    """All placeholders of `text`; `TemplateError` for any malformed `{{...}}`."""
    found: list[Placeholder] = []
    for loose in _LOOSE.finditer(text):
        strict = _PLACEHOLDER.fullmatch(loose.group(0))
        if strict is None or not strict.group(1):
            raise TemplateError(
                f'invalid template "{loose.group(0)}": a placeholder is '
                "{{$root.path.to.value}} or {{$root.path:default}}, with dots between "
                "segments (write a[0] as a.0)"
            )
        key, default = strict.group(1), strict.group(2)
        if default is not None:
            default = default.strip()
        found.append(Placeholder(loose.group(0), key, tuple(key.split(".")), default))
    rest = _LOOSE.sub("", text)
    if "{{" in rest:
        raise TemplateError(f'unclosed template in "{_clip(text)}": "{{{{" without "}}}}"')
    return found


def compile_template(value: Any) -> Renderer:
    """Compile a JSON value with placeholders into a renderer."""
    if isinstance(value, str):
        return _compile_string(value)
    if isinstance(value, dict):
        items = tuple((_compile_string(str(k)), compile_template(v)) for k, v in value.items())
        if all(isinstance(k, Const) and isinstance(v, Const) for k, v in items):
            return Const(value)
        return DictRenderer(items, _gather(r for pair in items for r in pair))
    if isinstance(value, list):
        rendered = tuple(compile_template(v) for v in value)
        if all(isinstance(r, Const) for r in rendered):
            return Const(value)
        return ListRenderer(rendered, _gather(rendered))
    return Const(value)


def _compile_string(text: str) -> Renderer:
    if "{{" not in text:
        return Const(text)
    found = parse_placeholders(text)
    if not found:
        return Const(text)
    if len(found) == 1 and text.strip() == found[0].text:
        return Single(found[0])
    parts: list[str | Placeholder] = []
    cursor = 0
    for ph in found:
        start = text.index(ph.text, cursor)
        if start > cursor:
            parts.append(text[cursor:start])
        parts.append(ph)
        cursor = start + len(ph.text)
    if cursor < len(text):
        parts.append(text[cursor:])
    return Interpolated(tuple(parts), tuple(found))


def _gather(renderers: Iterable[Renderer]) -> tuple[Placeholder, ...]:
    return tuple(ph for r in renderers for ph in r.placeholders)


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def template_keys(value: Any) -> list[Placeholder]:
    """Placeholders anywhere in a raw JSON value (for validation)."""
    return list(compile_template(value).placeholders)
