"""A parser for Houdini DialogScript (the parameter interface of an asset), enough for our asset.

Grammar, as Houdini writes it: ``keyword value...`` statements, one per line; ``{ ... }`` blocks (which may
span lines) and ``[ ... ]`` groups; double-quoted strings with backslash escapes; ``#`` comment lines.
Unknown keywords inside ``parm`` raise, so a typo in the asset fails the tests instead of being ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

Token = tuple[str, str]  # (kind, text): kind in word, str, {, }, [, ], nl


@dataclass
class Block:
    items: list[Token | Block | Bracket]


@dataclass
class Bracket:
    items: list[Token | Block | Bracket]


Item = Token | Block | Bracket


@dataclass(frozen=True)
class Default:
    value: str
    expression: bool = False  # [ "expr" hscript-expr ]
    language: str = ""


@dataclass
class ParmDef:
    name: str
    label: str = ""
    type: str = ""
    size: int = 1
    defaults: list[Default] = field(default_factory=list)
    range: tuple[str, ...] = ()
    menu_kind: str = ""  # menu, menureplace, menutoggle
    menu_items: list[tuple[str, str]] = field(default_factory=list)
    menu_script: str = ""
    menu_language: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    help: str = ""  # the parm's tooltip
    disablewhen: str = ""
    hidewhen: str = ""
    folder: str = ""
    # A multiparm block (type "multiparm": its value is the instance count): the templates of one
    # instance, names with '#' for the instance number, which starts at `start_offset` (Houdini's
    # default 1; parmtag "multistartoffset").
    instances: list[ParmDef] = field(default_factory=list)
    start_offset: int = 1

    @property
    def callback(self) -> str:
        return self.tags.get("script_callback", "")

    def component_names(self) -> list[str]:
        if self.size <= 1:
            return [self.name]
        if self.type in ("vector", "intvector", "uv", "uvw", "direction"):
            return [self.name + c for c in "xyzw"[: self.size]]
        if self.type == "color":
            return [self.name + c for c in "rgba"[: self.size]]
        return [f"{self.name}{i}" for i in range(1, self.size + 1)]


@dataclass
class DialogScript:
    name: str = ""
    script: str = ""
    label: str = ""
    input_labels: dict[int, str] = field(default_factory=dict)
    output_labels: dict[int, str] = field(default_factory=dict)
    parms: list[ParmDef] = field(default_factory=list)
    folders: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, label)

    def all_parms(self) -> list[ParmDef]:
        """Every template, multiparm instance templates (names with '#') included."""
        return [q for p in self.parms for q in (p, *p.instances)]

    def parm(self, name: str) -> ParmDef:
        for p in self.all_parms():
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> set[str]:
        return {n for p in self.all_parms() for n in p.component_names()}


class DialogScriptError(ValueError):
    pass


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_PARM_WORD_FLAGS = {"joinnext", "nolabel", "invisible", "export", "baseparm"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        i = 0
        while i < len(line):
            c = line[i]
            if c.isspace():
                i += 1
            elif c in "{}[]":
                tokens.append((c, c))
                i += 1
            elif c == '"':
                out = []
                i += 1
                while True:
                    if i >= len(line):
                        raise DialogScriptError(f"unterminated string in line: {line!r}")
                    c = line[i]
                    if c == "\\" and i + 1 < len(line):
                        out.append(_ESCAPES.get(line[i + 1], "\\" + line[i + 1]))
                        i += 2
                    elif c == '"':
                        i += 1
                        break
                    else:
                        out.append(c)
                        i += 1
                tokens.append(("str", "".join(out)))
            else:
                start = i
                while i < len(line) and not line[i].isspace() and line[i] not in '{}[]"':
                    i += 1
                tokens.append(("word", line[start:i]))
        tokens.append(("nl", "\n"))
    return tokens


def _nest(tokens: list[Token], pos: int, closer: str) -> tuple[list[Item], int]:
    items: list[Item] = []
    while pos < len(tokens):
        kind = tokens[pos][0]
        if kind == closer:
            return items, pos + 1
        if kind in "}]":
            raise DialogScriptError(f"unexpected {kind!r}")
        if kind == "{":
            sub, pos = _nest(tokens, pos + 1, "}")
            items.append(Block(sub))
        elif kind == "[":
            sub, pos = _nest(tokens, pos + 1, "]")
            items.append(Bracket(sub))
        else:
            items.append(tokens[pos])
            pos += 1
    if closer:
        raise DialogScriptError(f"missing {closer!r}")
    return items, pos


def _statements(items: list[Item]) -> list[list[Item]]:
    out: list[list[Item]] = []
    current: list[Item] = []
    for item in items:
        if isinstance(item, tuple) and item[0] == "nl":
            if current:
                out.append(current)
            current = []
        else:
            current.append(item)
    if current:
        out.append(current)
    return out


def _text(item: Item) -> str:
    if not isinstance(item, tuple) or item[0] not in ("word", "str"):
        raise DialogScriptError(f"expected a value, got {item!r}")
    return item[1]


def _values(block: Item) -> list[Item]:
    if not isinstance(block, Block):
        raise DialogScriptError(f"expected {{ ... }}, got {block!r}")
    return [i for i in block.items if not (isinstance(i, tuple) and i[0] == "nl")]


def _parse_parm(block: Block, folder: str) -> ParmDef:
    parm = ParmDef(name="", folder=folder)
    for stmt in _statements(block.items):
        key = _text(stmt[0])
        args = stmt[1:]
        if key in ("name", "label", "type", "help", "disablewhen", "hidewhen", "cppname"):
            value = _text(args[0])
            if key == "cppname":
                continue
            setattr(parm, key, value)
        elif key == "size":
            parm.size = int(_text(args[0]))
        elif key == "default":
            for v in _values(args[0]):
                if isinstance(v, Bracket):
                    inner = [x for x in v.items if not (isinstance(x, tuple) and x[0] == "nl")]
                    parm.defaults.append(
                        Default(_text(inner[0]), True, _text(inner[1]) if len(inner) > 1 else "")
                    )
                else:
                    parm.defaults.append(Default(_text(v)))
        elif key == "range":
            parm.range = tuple(_text(v) for v in _values(args[0]))
        elif key in ("menu", "menureplace", "menutoggle"):
            parm.menu_kind = key
            values = _values(args[0])
            scripts = [v for v in values if isinstance(v, Bracket)]
            if scripts:
                lines = [
                    _text(x) for b in scripts for x in b.items if not (isinstance(x, tuple) and x[0] == "nl")
                ]
                parm.menu_script = "\n".join(lines)
                rest = [v for v in values if not isinstance(v, Bracket)]
                if len(rest) == 2 and _text(rest[0]) == "language":
                    parm.menu_language = _text(rest[1])
            else:
                texts = [_text(v) for v in values]
                parm.menu_items = list(zip(texts[0::2], texts[1::2], strict=True))
        elif key == "parmtag":
            tag = _values(args[0])
            parm.tags[_text(tag[0])] = _text(tag[1])
        elif key in _PARM_WORD_FLAGS:
            parm.flags.add(key)
        else:
            raise DialogScriptError(f"parm {parm.name!r}: unknown keyword {key!r}")
    if not parm.name or not parm.type:
        raise DialogScriptError(f"parm without name or type: {parm!r}")
    return parm


def _parse_multiparm(block: Block, folder: str) -> ParmDef:
    """``multiparm { name, label, default N, parmtag..., parm {...}... }``: the count parm and the
    templates of one instance."""
    multi = ParmDef(name="", type="multiparm", folder=folder)
    for stmt in _statements(block.items):
        key = _text(stmt[0])
        args = stmt[1:]
        if key in ("name", "label", "help", "disablewhen", "hidewhen"):
            setattr(multi, key, _text(args[0]))
        elif key == "default":
            multi.defaults.append(Default(_text(args[0])))
        elif key == "parmtag":
            tag = _values(args[0])
            multi.tags[_text(tag[0])] = _text(tag[1])
        elif key == "parm":
            block_arg = args[0]
            assert isinstance(block_arg, Block)
            multi.instances.append(_parse_parm(block_arg, folder))
        else:
            raise DialogScriptError(f"multiparm {multi.name!r}: unknown keyword {key!r}")
    if not multi.name or not multi.instances:
        raise DialogScriptError(f"multiparm without a name or instance parms: {multi!r}")
    for inst in multi.instances:
        if "#" not in inst.name:
            raise DialogScriptError(f"multiparm {multi.name!r}: instance parm {inst.name!r} has no '#'")
    multi.start_offset = int(multi.tags.get("multistartoffset", "1"))
    return multi


def _parse_body(ds: DialogScript, items: list[Item], folder: str) -> None:
    for stmt in _statements(items):
        key = _text(stmt[0])
        if key == "parm":
            block = stmt[1]
            assert isinstance(block, Block)
            ds.parms.append(_parse_parm(block, folder))
        elif key == "multiparm":
            block = stmt[1]
            assert isinstance(block, Block)
            ds.parms.append(_parse_multiparm(block, folder))
        elif key in ("group", "groupsimple", "groupcollapsible"):
            block = stmt[1]
            assert isinstance(block, Block)
            body = _statements(block.items)
            name = label = ""
            rest: list[Item] = []
            for s in body:
                k = _text(s[0])
                if k == "name":
                    name = _text(s[1])
                elif k == "label":
                    label = _text(s[1])
                else:
                    rest.extend([*s, ("nl", "\n")])
            ds.folders.append((key, name, label))
            _parse_body(ds, rest, name)
        elif key in ("name", "script", "label"):
            setattr(ds, key, _text(stmt[1]))
        elif key == "inputlabel":
            ds.input_labels[int(_text(stmt[1]))] = _text(stmt[2])
        elif key == "outputlabel":
            ds.output_labels[int(_text(stmt[1]))] = _text(stmt[2])
        elif key == "help":
            continue
        else:
            raise DialogScriptError(f"unknown top-level keyword {key!r}")


def parse(text: str) -> DialogScript:
    items, _ = _nest(tokenize(text), 0, "")
    blocks = [i for i in items if isinstance(i, Block)]
    if len(blocks) != 1:
        raise DialogScriptError("a DialogScript holds exactly one top-level { ... } block")
    ds = DialogScript()
    _parse_body(ds, blocks[0].items, "")
    return ds


def load(path: Path) -> DialogScript:
    return parse(path.read_text(encoding="utf-8"))
