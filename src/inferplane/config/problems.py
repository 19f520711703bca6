"""From a YAML file and pydantic errors to located problems: ``file:line:col: where: what — fix``.

This module knows YAML node positions and how to word a validation error; it knows nothing
about Inferplane's configuration keys (the other modules of this package do); it gives them
their base (``Section``) and the error that carries a fix (``invalid``). A location is a path
of keys and list indices, e.g. ``("deployments", 1, "provider")``, printed as
``deployments[1].provider``.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError, PydanticUndefined

from inferplane import secrets
from inferplane.errors import ConfigError

Loc = tuple[str | int, ...]

# Field names whose values are never echoed back in a problem.
SECRET_FIELDS = frozenset({"api_key"})

_EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
}
_RANGE = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration file, where it is, and how to fix it."""

    file: str
    line: int | None
    column: int | None
    location: str
    message: str
    fix: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{where}: {self.location}: {self.message} — fix: {self.fix}"


class Issue(NamedTuple):
    """A problem before it is located in a file: ``key`` points at the key, not its value."""

    loc: Loc
    message: str
    fix: str
    key: bool = False


def format_loc(loc: Iterable[str | int]) -> str:
    """``("deployments", 1, "provider")`` -> ``"deployments[1].provider"``; ``()`` -> top level."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'openai'?)`` when ``word`` is close to one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def one_of(word: str | None, choices: Iterable[str]) -> str:
    """``use one of: a, b (did you mean 'a'?)``."""
    listed = sorted(choices)
    hint = did_you_mean(word, listed) if word is not None else ""
    return f"use one of: {', '.join(listed)}{hint}"


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document: its plain data and its node tree (for positions)."""

    data: Any
    root: yaml.Node | None

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int | None, int | None]:
        """1-based line and column of the value at ``loc`` (of its key when ``key``).

        A path that does not exist in the file points at the nearest ancestor that does.
        """
        if self.root is None:
            return None, None
        node, target = self.root, self.root
        for i, part in enumerate(loc):
            found = _child(node, part)
            if found is None:
                break
            key_node, node = found
            target = key_node if key and key_node is not None and i == len(loc) - 1 else node
        return target.start_mark.line + 1, target.start_mark.column + 1

    def problem(self, file: str, issue: Issue) -> Problem:
        line, column = self.position(issue.loc, key=issue.key)
        return Problem(file, line, column, format_loc(issue.loc), issue.message, issue.fix)

    def duplicate_keys(self) -> list[Issue]:
        """Keys written twice in one mapping (YAML would silently keep the last one)."""
        return [
            Issue(loc, f"key '{loc[-1]}' is written twice", "remove one of them", key=True)
            for loc in _duplicates(self.root, ())
        ]


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document with the safe loader, keeping the node tree; raises YAMLError."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return YamlDocument(data, root)


def yaml_error_problem(exc: yaml.YAMLError, file: str) -> Problem:
    """A YAML syntax error as a problem, at the line and column the parser stopped."""
    line = column = None
    what = str(exc).splitlines()[0] if str(exc) else "cannot parse"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        what = " ".join(p for p in (exc.context, exc.problem) if p) or what
    if "'\\t'" in what:
        fix = "indent with spaces, not tabs"
    elif "mapping values are not allowed" in what:
        fix = "put a space after each key's ':', quote values that contain ': ', or fix indentation"
    elif "constructor" in what:
        fix = "remove the tag (the `!!...` part): only plain YAML values are read"
    elif "expected <block end>" in what or "did not find expected" in what:
        fix = "align this line with its siblings: all keys of one mapping start in the same column"
    else:
        fix = "check indentation and quoting near this line (values with ':' or '#' need quotes)"
    return Problem(file, line, column, "(syntax)", f"YAML syntax error: {what}", fix)


def validation_issues(
    exc: ValidationError, model: type[BaseModel], skip: Iterable[str] = ()
) -> list[Issue]:
    """Each pydantic error as an issue with a concrete fix; error types in ``skip`` are dropped."""
    skipped = set(skip)
    errors = exc.errors(include_url=False)
    return [_issue(err, model) for err in errors if err["type"] not in skipped]


def _issue(err: ErrorDetails, model: type[BaseModel]) -> Issue:
    loc: Loc = tuple(err["loc"])
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind in ("extra_forbidden", "invalid_key"):  # invalid_key: not a string, e.g. `1: 2`
        parent = _model_at(model, loc[:-1])
        allowed = sorted(parent.model_fields) if parent is not None else []
        name = str(loc[-1])
        hint = did_you_mean(name, allowed)
        fix = f"remove it{hint}; allowed keys here: {', '.join(allowed)}"
        return Issue(loc, f"unknown key '{name}'", fix, key=True)
    if "fix" in ctx and "message" in ctx:  # raised by our own validators
        field = str(ctx.get("field") or "")
        sub = tuple(int(p) if p.isdigit() else p for p in field.split(".") if p)
        return Issue(loc + sub, str(ctx["message"]), str(ctx["fix"]))
    name, info, annotation = _field_at(model, loc)
    shown = "" if name in SECRET_FIELDS else _show(value)
    subject = f"value {shown}" if shown else "the value"
    if kind == "missing":
        return Issue(loc[:-1], f"missing required key '{name}'", f"add `{name}: {_example(info)}`")
    if kind == "string_too_short":
        return Issue(loc, f"`{name}` is empty", f"write e.g. `{name}: {_example(info)}`")
    if kind in _RANGE and info is not None:
        return Issue(loc, f"{subject} is out of range", f"use a value {_range(info)}")
    if kind == "literal_error":
        choices = [str(a) for a in get_args(annotation)]
        word = value if isinstance(value, str) else None
        return Issue(loc, f"{subject} is not allowed", one_of(word, choices))
    if kind in _EXPECTED:
        expected = _EXPECTED[kind]
        got = _type_name(value) + (f" ({shown})" if shown else "")
        message = f"expected {expected}, got {got}"
        section = _model_at(model, loc)
        if section is not None:
            keys = ", ".join(section.model_fields)
            return Issue(loc, message, f"write a mapping with keys from: {keys}")
        if loc and isinstance(loc[-1], int):
            return Issue(loc, message, f"write each item of `{name}` as {expected}")
        if kind == "string_type" and shown and name not in SECRET_FIELDS:
            return Issue(loc, message, f'quote it: `{name}: "{value}"`')
        return Issue(loc, message, f"write {expected}, e.g. `{name}: {_example(info)}`")
    return Issue(loc, err["msg"], "see docs/configuration.md for this key")


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        found = None
        for key_node, value_node in node.value:  # the last one wins, as when loading
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                found = (key_node, value_node)
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return None, node.value[part]
    return None


def _duplicates(node: yaml.Node | None, loc: Loc) -> Iterator[Loc]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if name in seen:
                yield (*loc, name)
            seen.add(name)
            yield from _duplicates(value_node, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicates(item, (*loc, i))


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _field_at(model: type[BaseModel], loc: Loc) -> tuple[str, FieldInfo | None, Any]:
    """The last field name on ``loc``, its FieldInfo, and the (unwrapped) type at ``loc``."""
    name, info, annotation = "value", None, _unwrap(model)
    for part in loc:
        if isinstance(part, str) and _is_model(annotation):
            info = annotation.model_fields.get(part)
            if info is None:
                return part, None, None
            name, annotation = part, _unwrap(info.annotation)
        elif isinstance(part, int) and get_origin(annotation) is list:
            annotation = _unwrap(get_args(annotation)[0])
        else:
            return name, info, None
    return name, info, annotation


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    annotation = _field_at(model, loc)[2]
    return annotation if _is_model(annotation) else None


def _range(info: FieldInfo) -> str:
    low = high = ""
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = f"at least {bound.ge}"
        elif isinstance(bound, annotated_types.Gt):
            low = f"greater than {bound.gt}"
        elif isinstance(bound, annotated_types.Le):
            high = f"at most {bound.le}"
        elif isinstance(bound, annotated_types.Lt):
            high = f"less than {bound.lt}"
    return " and ".join(b for b in (low, high) if b) or "in the allowed range"


def _example(info: FieldInfo | None) -> str:
    if info is None:
        return "..."
    if info.examples:
        return _yaml_scalar(info.examples[0])
    if info.default is not PydanticUndefined and isinstance(info.default, str | int | float):
        return _yaml_scalar(info.default)
    origin = get_origin(_unwrap(info.annotation))
    if origin is list:
        return "[a, b]"
    if origin is Literal:
        return _yaml_scalar(get_args(_unwrap(info.annotation))[0])
    return {int: "1", float: "1.0", str: "name", bool: "true"}.get(_unwrap(info.annotation), "...")


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    return str(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    """A short rendering of a scalar input, or ``""`` for containers and nothing."""
    if value is None or isinstance(value, dict | list):
        return ""
    text = repr(value) if isinstance(value, str) else _yaml_scalar(value)
    return text[:40] + ("…" if len(text) > 40 else "")


def secret_url(url: str, owner: str) -> str:
    """``url``, or what its ``env:`` / ``file:`` reference holds (``secrets.secret_url``),
    as a validation error when it cannot be read."""
    try:
        return secrets.secret_url(url, owner)
    except ConfigError as exc:
        raise invalid("secret_unreadable", exc.message,
                      "set it, or write the URL itself") from None


def invalid(kind: str, message: str, fix: str, field: str = "") -> PydanticCustomError:
    """A validation error carrying its fix; ``field`` (dotted) narrows the location."""
    return PydanticCustomError(
        kind, "{message} — fix: {fix}", {"message": message, "fix": fix, "field": field}
    )


class Section(BaseModel):
    """The base of every configuration section."""

    # strict: `port: yes` or `port: "80"` is a mistake, not 1 or 80 (an int still fills a float).
    # hide_input_in_errors: a ValidationError printed in a log must not show an api_key.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, hide_input_in_errors=True)
