"""`--help` for config keys: every key with its default, a one-line description and, where the
value is one of a fixed set, the choices. Descriptions are read from the comment beside (or
right above) each dataclass field, else from a `name: text` line of the class docstring, so
that a key is described in one place: where it is defined. Choices come from `Literal`
annotations or from the tuple the code validates against (passed in by the caller).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing
from typing import Any, Sequence


def field_descriptions(cls: type) -> dict[str, str]:
  """{field name: description} for the dataclass `cls`: the comment on the field's lines,
  else the comment block right above it, else the docstring's `name: text` line."""
  try:
    source = textwrap.dedent(inspect.getsource(cls))
  except (OSError, TypeError):  # made at run time (dataclasses.make_dataclass): no source
    return {}
  comments, comment_only = {}, set()
  for tok in tokenize.generate_tokens(io.StringIO(source).readline):
    if tok.type == tokenize.COMMENT:
      comments[tok.start[0]] = tok.string.lstrip("#").strip()
      if not tok.line[:tok.start[1]].strip():
        comment_only.add(tok.start[0])
  docstring, name = {}, None
  for line in (inspect.getdoc(cls) or "").splitlines():  # "name: text" and its continuation
    entry = re.match(r"(\w+): (.+)$", line)
    if entry:
      name = entry.group(1)
      docstring[name] = entry.group(2).strip()
    elif name and line.startswith(" ") and line.strip():
      docstring[name] += " " + line.strip()
    else:
      name = None
  out = {}
  for node in ast.parse(source).body[0].body:
    if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
      continue
    name = node.target.id
    trailing = [comments[n] for n in range(node.lineno, node.end_lineno + 1)
                if n in comments and n not in comment_only]
    above, n = [], node.lineno - 1
    while n in comment_only:
      above.insert(0, comments[n])
      n -= 1
    text = trailing[0] if trailing else " ".join(above) or docstring.get(name, "")
    if text:
      out[name] = text
  return out


def literal_choices(cls: type) -> dict[str, tuple]:
  """{field name: its values} for the fields of `cls` annotated Literal[...]."""
  hints = typing.get_type_hints(cls)
  out = {}
  for name, hint in hints.items():
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
      out[name] = typing.get_args(hint)
    elif args and all(typing.get_origin(a) is typing.Literal for a in args):  # Literal | None
      out[name] = tuple(v for a in args for v in typing.get_args(a))
  return out


def _value(v: Any) -> str:
  if dataclasses.is_dataclass(v):
    v = dataclasses.asdict(v)
  if isinstance(v, tuple):
    v = list(v)
  return "null" if v is None else (repr(v) if isinstance(v, (list, dict)) else str(v))


def entries(root: Any, classes: dict[str, Sequence[type]],
            extra: dict[str, str] | None = None) -> list[tuple[str, Any, str, tuple]]:
  """(key, default, description, literal choices) for every key of the config `root` (a
  dataclass instance). A field of `root` whose value is a dataclass and which `classes` names
  is a section: its fields are keys `section.field`, described by the dataclasses listed
  for it (the first that describes a field wins); `classes[""]` describes root's own keys.
  `extra`: descriptions for keys no dataclass source holds (fields made at run time)."""
  extra = extra or {}

  def described(cls_list):
    descriptions, literals = {}, {}
    for cls in cls_list:
      for k, v in field_descriptions(cls).items():
        descriptions.setdefault(k, v)
      literals.update(literal_choices(cls))
    return descriptions, literals

  out = []
  top, top_literals = described(classes.get("", [type(root)]))
  for field in dataclasses.fields(root):
    value = getattr(root, field.name)
    if dataclasses.is_dataclass(value) and field.name in classes:
      descriptions, literals = described(classes[field.name])
      for sub in dataclasses.fields(value):
        key = f"{field.name}.{sub.name}"
        out.append((key, getattr(value, sub.name),
                    extra.get(key, descriptions.get(sub.name, "")), literals.get(sub.name, ())))
    else:
      out.append((field.name, value, extra.get(field.name, top.get(field.name, "")),
                  top_literals.get(field.name, ())))
  return out


def describe(root: Any, classes: dict[str, Sequence[type]], choices: dict[str, Sequence] | None = None,
             extra: dict[str, str] | None = None, width: int = 100) -> str:
  """The help text of `entries`: `key = default`, then its description and choices
  (`choices` by key, else the field's Literal values), indented beneath."""
  choices = choices or {}
  lines = []
  for key, value, text, literals in entries(root, classes, extra):
    lines.append(f"  {key} = {_value(value)}")
    options = choices.get(key, literals)
    if options:
      text = text.rstrip(". ") + (". " if text else "") + f"Choices: {', '.join(map(str, options))}."
    lines += [f"      {line}" for line in textwrap.wrap(text.strip(), width - 6)]
  return "\n".join(lines)
