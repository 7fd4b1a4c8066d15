"""Reading Kubernetes YAML manifests into objects of the standard kinds.

`load_manifests(paths)` reads multi-document YAML files (what `kubectl apply -f`
takes) and gives back `(kind, object)` pairs shaped like the kinds in
rules/kinds.konv, ready for `engine.fixpoint.reconcile(objects=…)`, together
with warnings. The mapping is the one kinds.konv describes: metadata.name,
namespace and labels; a pod's spec.nodeName is `node`; the controller owner
reference is `owner`; a container's resource requests are its `cpu` and
`memory`; a node's status.allocatable (or capacity) is its `cpu`, `memory` and
`pods`; an HPA's scaleTargetRef is its `target`: the name of a Deployment, else KIND/NAME.

What Konverge does not model is never silently dropped: an unsupported kind or
field is a warning that names it, with its file:line:col (the YAML is composed,
not loaded, so every node keeps its position). Status is the exception — it is
what the control plane computes, so it is ignored without a word (a node's
allocatable resources apart). Bad YAML, a key given twice in one mapping and
values of the wrong type are errors with their position, raised together as
one KonvergeError.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import attrs
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import Diagnostic, KonvergeError, Span

SUFFIXES = (".yaml", ".yml", ".json")  # as `kubectl apply -f` reads them (JSON is YAML)

# Diagnostic codes of this module.
E_YAML = "E301"  # not YAML, or not readable
E_VALUE = "E302"  # a value of the wrong type, a bad quantity
E_MISSING = "E303"  # kind or metadata.name missing
E_TWICE = "E304"  # the same object twice
E_VERSION = "E305"  # an apiVersion that does not serve the kind
W_KIND = "W301"  # a kind Konverge does not model: the document is skipped
W_FIELD = "W302"  # a field Konverge does not model: ignored

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?")

# Metadata that is bookkeeping of a real API server, not part of what an object asks for.
_SILENT_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")
# Annotations that a real API server or kubectl writes for its own bookkeeping: dropped without a word.
_SILENT_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# The group/version a Kubernetes API server serves each kind Konverge reads in (the first is the
# one to write); `kubectl apply` refuses any other, and an object without an apiVersion.
API_VERSIONS = {
    "Namespace": ("v1",), "Node": ("v1",), "Pod": ("v1",), "Service": ("v1",), "ServiceAccount": ("v1",),
    "Deployment": ("apps/v1",), "ReplicaSet": ("apps/v1",), "DaemonSet": ("apps/v1",), "StatefulSet": ("apps/v1",),
    "Job": ("batch/v1",),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "autoscaling/v1"),
    "PodDisruptionBudget": ("policy/v1",),
    "List": ("v1",),
}
# Kinds created before all others, in this order (the rest keep the order they were read in).
_FIRST = {"Namespace": 0, "ServiceAccount": 1}


def parse_quantity(text: str) -> int | Fraction:
    """A Kubernetes quantity (`250m`, `0.5`, `1Gi`, `1e3`, `2k`) as an exact number of base
    units: an int when whole, else a Fraction. Raises ValueError on anything else."""
    m = _QUANTITY.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a quantity")
    sign, digits, suffix, exponent = m.groups()
    value = Fraction(digits if not digits.endswith(".") else digits[:-1] or "0")
    if exponent is not None:
        value *= Fraction(10) ** int(exponent)
    elif suffix:
        value *= _BINARY.get(suffix) or _DECIMAL[suffix]
    if sign == "-":
        value = -value
    return value.numerator if value.denominator == 1 else value


def quantity_text(text: str) -> str:
    """A quantity as Kubernetes prints it (Quantity.String()), in the format it was written in:
    `2.0` → `2`, `1.5` → `1500m`, `2000` → `2k`, `1.5Gi` → `1536Mi`, `1024Mi` → `1Gi`, `1e3` →
    `1e3`; a binary quantity below 1Ki or not whole is printed as a decimal one."""
    _, _, suffix, exponent = _QUANTITY.fullmatch(text.strip()).groups()
    value = Fraction(parse_quantity(text))
    if value == 0:
        return "0"
    if suffix in _BINARY and abs(value) >= 1024 and value.denominator == 1:
        n, power = value.numerator, 0
        while n % 1024 == 0 and power < 6:
            n, power = n // 1024, power + 1
        return f"{n}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][power]}"
    nanos = -(-value * 10**9 // 1)  # Kubernetes keeps nine decimals, rounding up
    amount, scale = int(nanos), -9
    while amount and amount % 10 == 0:
        amount, scale = amount // 10, scale + 1
    amount, scale = amount * 10 ** (scale % 3), scale - scale % 3
    if exponent is not None:
        return f"{amount}e{scale}" if scale else str(amount)
    decimal = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
    return f"{amount}{decimal[scale]}" if scale in decimal else f"{amount}e{scale}"


@attrs.frozen(slots=True)
class Manifests:
    """What a set of manifest files declares: objects as (kind, object dict, where it is declared:
    its `kind`), for `reconcile(objects=…)`, so that the API server's refusal of an object points
    at its document; and warnings."""

    declared: tuple[tuple[str, dict, Span], ...]
    warnings: tuple[Diagnostic, ...]

    @property
    def objects(self) -> tuple[tuple[str, dict], ...]:
        """(kind, object dict) pairs."""
        return tuple((kind, obj) for kind, obj, _ in self.declared)


def is_manifest(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def load_manifests(paths: Iterable[str | Path]) -> Manifests:
    """Read the manifest files in order. Raises one KonvergeError with every error (and
    the warnings beside them) if any file is invalid."""
    return _load([(str(path), None) for path in paths])


def loads(text: str, file: str = "<manifest>") -> Manifests:
    """Manifests from text, for tests and notebooks."""
    return _load([(file, text)])


def _load(sources: list[tuple[str, str | None]]) -> Manifests:
    diagnostics: list[Diagnostic] = []
    objects: list[tuple[str, dict, Span]] = []
    seen: dict[tuple, Span] = {}
    for file, text in sources:
        for kind, obj, span in _Reader(file, diagnostics, text).read():
            key = (kind, obj.get("namespace"), obj["name"])
            if key in seen:
                diagnostics.append(Diagnostic(
                    E_TWICE, f"{kind} {'/'.join(k for k in key[1:] if k)} is declared twice", span,
                    hint=f"the first is at {seen[key]}"))
                continue
            seen[key] = span
            objects.append((kind, obj, span))
    if any(d.severity == "error" for d in diagnostics):
        raise KonvergeError(diagnostics)
    # Namespaces, then ServiceAccounts, first, as Helm and kustomize order them: the API server
    # refuses an object in a namespace that does not exist yet, and a pod whose service account
    # does not exist yet; files are read in name order.
    objects.sort(key=lambda kos: _FIRST.get(kos[0], len(_FIRST)))
    return Manifests(tuple(objects), tuple(diagnostics))


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")  # quoted, what YAML would read as the same integer


def _shift(doc: Node | None, line: int, column: int) -> None:
    """Moves the marks of a document composed on its own to where it starts in its file."""
    seen: set[int] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        for mark in (node.start_mark, node.end_mark):
            if id(mark) not in seen:
                seen.add(id(mark))
                if mark.line == 0:
                    mark.column += column
                mark.line += line
        if isinstance(node, MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


class _Skip:
    """A handler's answer for a value that is left out (after a diagnostic)."""


SKIP = _Skip()
Handler = Callable[[Node, str], object]


class _Reader:
    """One file: composes its YAML documents and maps each to an object."""

    def __init__(self, file: str, diagnostics: list[Diagnostic], text: str | None = None):
        self.file = file
        self.diagnostics = diagnostics
        self.text = text
        self._constructor = yaml.SafeLoader("")

    # -- diagnostics

    def span(self, node: Node) -> Span:
        s, e = node.start_mark, node.end_mark
        end_line, end_col = e.line + 1, e.column + 1
        if end_line != s.line + 1:  # a block value: point at its first line only
            end_line, end_col = s.line + 1, s.column + 2
        return Span(self.file, s.line + 1, s.column + 1, end_line, end_col)

    def error(self, node: Node, message: str, hint: str | None = None, code: str = E_VALUE) -> _Skip:
        self.diagnostics.append(Diagnostic(code, message, self.span(node), hint=hint))
        return SKIP

    def warn(self, node: Node, message: str, hint: str | None = None, code: str = W_FIELD) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.span(node), hint=hint, severity="warning"))

    # -- documents

    def read(self) -> list[tuple[str, dict, Span]]:
        try:
            text = self.text if self.text is not None else Path(self.file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            self.diagnostics.append(Diagnostic("E002", "this file is not valid UTF-8 text", file=self.file))
            return []
        except OSError as e:
            self.diagnostics.append(Diagnostic("E001", f"cannot read this file: {e.strerror}", file=self.file))
            return []
        is_json = Path(self.file).suffix.lower() == ".json"
        try:
            if is_json:
                documents = self.compose_json(text)
                if documents is None:
                    return []
            else:
                documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
            for doc in documents:
                self.resolve_keys(doc)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            span = Span(self.file, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2) if mark else None
            problem = e.problem or e.context or "invalid YAML"
            self.diagnostics.append(Diagnostic(E_YAML, f"invalid YAML: {problem}", span, file=self.file,
                                               hint="check the indentation and quoting around this position"))
            return []
        except yaml.YAMLError as e:
            self.diagnostics.append(Diagnostic(E_YAML, f"invalid YAML: {e}", file=self.file))
            return []
        except RecursionError:  # PyYAML's composer (and the json module) recurse once per level of nesting
            self.diagnostics.append(self.too_deep(text.replace("\t", " ") if is_json else text))
            return []
        out: list[tuple[str, dict, Span]] = []
        for doc in documents:
            if doc is None or (isinstance(doc, ScalarNode) and doc.tag.endswith(":null")):
                continue  # an empty document, e.g. after a trailing `---`
            self.document(doc, out)
        return out

    def compose_json(self, text: str) -> list[Node] | None:
        """A .json file as kubectl reads it (NewYAMLOrJSONDecoder): a stream of JSON values, one
        object after another. Each is checked by the json module first (YAML would take a
        trailing comma or a single quote that kubectl refuses), then composed as YAML, which
        JSON is, for the positions of its nodes; None after an error."""
        decoder, documents, at = json.JSONDecoder(), [], 0
        while (begin := _JSON_SPACE.match(text, at).end()) < len(text):
            try:
                at = decoder.raw_decode(text, begin)[1]
            except json.JSONDecodeError as e:
                span = Span(self.file, e.lineno, e.colno, e.lineno, e.colno + 1)
                self.diagnostics.append(Diagnostic(E_YAML, f"invalid JSON: {e.msg}", span,
                                                   hint="check the commas, quotes and brackets around this position"))
                return None
            # In valid JSON a tab is whitespace between tokens (a string holds it as \t), which
            # YAML refuses where it indents: a space in its place keeps every position.
            doc = yaml.compose(text[begin:at].replace("\t", " "), Loader=yaml.SafeLoader)
            line = text.count("\n", 0, begin)
            _shift(doc, line, begin - (text.rfind("\n", 0, begin) + 1))
            documents.append(doc)
        return documents

    def resolve_keys(self, doc: Node | None) -> None:
        """The document's mappings as Kubernetes' YAML reader takes them: a key given twice in
        one mapping is an error (it would drop a value without a word), and merge keys
        (`<<: *defaults`) bring in the pairs of their mappings, the mapping's own keys winning.
        Each node once, however many aliases lead to it."""
        seen: set[int] = set()
        stack = [doc]
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, ScalarNode):
                self.pair_surrogates(node)
            elif isinstance(node, MappingNode):
                first: dict[str, Node] = {}
                for key, _ in node.value:
                    if isinstance(key, ScalarNode) and key.value in first:
                        self.error(key, f"`{key.value}` is given twice in this mapping",
                                   hint=f"the first is at {self.span(first[key.value])}; keep one")
                    elif isinstance(key, ScalarNode):
                        first[key.value] = key
                self._constructor.flatten_mapping(node)
                stack.extend(n for pair in node.value for n in pair)
            else:
                stack.extend(node.value)

    def pair_surrogates(self, node: ScalarNode) -> None:
        """PyYAML reads an escaped character beyond the BMP as JSON writes it, "\\ud83d\\ude00",
        as two UTF-16 halves that Python cannot print: they are paired into the character, as
        Kubernetes' JSON decoder does (in a YAML file too, where go-yaml would refuse the escape).
        A half without its pair is no character: an error."""
        if not _SURROGATE.search(node.value):
            return
        halves = node.value.encode("utf-16-le", "surrogatepass")
        try:
            node.value = halves.decode("utf-16-le")
        except UnicodeDecodeError:
            node.value = halves.decode("utf-16-le", "replace")
            self.error(node, "this string holds half of a UTF-16 surrogate pair (an escape in \\ud800-\\udfff) "
                             "without the other half, which is no character",
                       hint="escape the character as its pair of halves, e.g. \\ud83d\\ude00, or write the "
                            "character itself")

    def too_deep(self, text: str) -> Diagnostic:
        """Where the YAML nests deepest, found by its events (PyYAML's parser keeps a stack of
        its own, so it reads what the composer could not)."""
        depth, deepest, mark = 0, 0, None
        with contextlib.suppress(yaml.YAMLError):  # an error further on: the deepest point before it
            for event in yaml.parse(text, Loader=yaml.SafeLoader):
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > deepest:
                        deepest, mark = depth, event.start_mark
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
        span = Span(self.file, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2) if mark else None
        return Diagnostic(E_YAML, f"this YAML nests {deepest} deep, too deep to read", span, file=self.file,
                          hint="a Kubernetes object nests a few dozen levels at most: is this the file you meant?")

    def document(self, doc: Node, out: list) -> None:
        if not isinstance(doc, MappingNode):
            self.error(doc, "a manifest document must be a mapping with `kind`, `metadata` and `spec`")
            return
        pairs = self.pairs(doc)
        kind_node = pairs.get("kind", (None, None))[1]
        if kind_node is None:
            own = "converged" in pairs and "objects" in pairs  # `reconcile -o json` read back as a manifest
            self.error(doc, "this document has no `kind`", code=E_MISSING,
                       hint="this is Konverge's own output (`converged`, `objects`), not a manifest: write it "
                            "outside the spec directory" if own else None)
            return
        kind = self.string(kind_node, "kind")
        if kind is SKIP or self.api_version(kind, kind_node, pairs) is SKIP:
            return
        if kind == "List":
            items = pairs.get("items", (None, None))[1]
            if isinstance(items, SequenceNode):
                for item in items.value:
                    self.document(item, out)
            elif items is not None and not self.null(items):
                self.error(items, "`items` of a List must be a list of objects")
            return
        reader = _KINDS.get(kind)
        if reader is None:
            self.warn(kind_node, f"kind `{kind}` is not supported by Konverge; this document is ignored",
                      hint="supported kinds: " + ", ".join(sorted(_KINDS)), code=W_KIND)
            return
        meta_node = pairs.get("metadata", (None, None))[1]
        if meta_node is None:
            self.error(doc, f"this {kind} has no `metadata`", code=E_MISSING)
            return
        obj: dict = {"kind": kind}
        if self.metadata(kind, meta_node, obj) is SKIP:
            return
        body: dict = {}
        for key, (key_node, value) in pairs.items():
            if key in ("apiVersion", "kind", "metadata"):
                continue
            if key == "spec":
                reader.spec(self, value, body, obj)
            elif key == "status":
                if reader.status is not None:
                    reader.status(self, value, body)
            else:
                self.warn(key_node, f"field `{key}` of {kind} is not supported; ignored")
        if reader.finish is not None and reader.finish(self, doc, obj, body) is SKIP:
            return
        obj.update(body)
        out.append((kind, obj, self.span(kind_node)))

    def api_version(self, kind: str, kind_node: Node, pairs: dict):
        """The document's apiVersion, checked as the API server maps it: a kind Konverge reads
        must name the group/version that serves it; any kind must name one."""
        node = pairs.get("apiVersion", (None, None))[1]
        served = API_VERSIONS.get(kind)
        write = f"apiVersion: {served[0]}" if served else "apiVersion: GROUP/VERSION"
        version = None if node is None or self.null(node) else self.string(node, "apiVersion")
        if version is SKIP:
            return SKIP
        if not version:  # absent, null or "": kubectl's "Object 'apiVersion' is missing" alike
            return self.error(node if node is not None else kind_node, f"apiVersion not set: this {kind} does "
                              "not say the API group and version it belongs to", code=E_MISSING,
                              hint=f"write `{write}` beside `kind: {kind}`; kubectl refuses an object without it")
        if served is not None and version not in served:
            return self.error(node, f'no matches for kind "{kind}" in version "{version}"', code=E_VERSION,
                              hint=f"{kind} is served as {' or '.join(served)}: write `{write}` (kubectl adds: "
                                   "ensure CRDs are installed first)")
        return version

    def metadata(self, kind: str, node: Node, obj: dict):
        cluster = kind in ("Namespace", "Node")
        owned = kind in ("Pod", "ReplicaSet")
        got = self.fields(node, "metadata", {
            "name": self.string,
            "namespace": self.string,
            "labels": self.string_map,
            "annotations": self.annotations(modelled=(DELETION_COST,) if kind == "Pod" else ()),
            **({"ownerReferences": self.owner_refs} if owned else {}),
        }, silent=_SILENT_METADATA)
        if got is SKIP:
            return SKIP
        name = got.get("name")
        if not isinstance(name, str):
            if "name" not in got:
                self.error(node, f"this {kind} has no `metadata.name`", code=E_MISSING,
                           hint="Konverge does not generate names: give the object a name")
            return SKIP
        obj["name"] = name
        if "namespace" in got:
            if cluster:
                self.warn(self.pairs(node)["namespace"][0],
                          f"{kind} is cluster-scoped, so `metadata.namespace` is ignored")
            else:
                obj["namespace"] = got["namespace"]
        if not cluster:
            obj.setdefault("namespace", "default")
        else:
            obj["namespace"] = None
        if "labels" in got:
            obj["labels"] = got["labels"]
        if got.get("ownerReferences") not in (None, SKIP):
            obj["owner"] = got["ownerReferences"]
        if kind == "Pod":
            cost = self.annotation(node, DELETION_COST)
            if cost is not None:
                obj["deletionCost"] = cost
        return obj

    def annotations(self, modelled: tuple[str, ...] = (), why: str = "") -> Handler:
        """A handler for `metadata.annotations`: checks the values are strings and warns, once per
        mapping, about the annotations Konverge does not model (they are dropped)."""
        def handler(node: Node, path: str):
            got = self.string_map(node, path)
            if got is SKIP:
                return SKIP
            dropped = [k for k in got if k not in modelled and k not in _SILENT_ANNOTATIONS]
            if dropped:
                keys = ", ".join(f"`{k}`" for k in dropped)
                read = (" (Konverge reads only " + ", ".join(f"`{k}`" for k in modelled) + ")") if modelled else ""
                self.warn(node, f"annotation{'s' if len(dropped) > 1 else ''} {keys} of `{path}` "
                                f"{'are' if len(dropped) > 1 else 'is'} not modelled{read}; ignored",
                          hint=why or None)
            return SKIP
        return handler

    def annotation(self, meta: Node, key: str):
        annotations = self.pairs(meta).get("annotations", (None, None))[1]
        if not isinstance(annotations, MappingNode):
            return None
        value = self.pairs(annotations).get(key, (None, None))[1]
        if value is None:
            return None
        try:
            return int(str(value.value))
        except (TypeError, ValueError):
            self.error(value, f"annotation `{key}` must be an integer")
            return None

    def owner_refs(self, node: Node, path: str):
        refs = self.list_of(node, path, lambda n, p: self.fields(n, p, {
            "kind": self.string, "name": self.string, "controller": self.boolean,
        }, silent=("apiVersion", "uid", "blockOwnerDeletion")))
        if refs is SKIP:
            return SKIP
        controllers = [r for r in refs if r is not SKIP and r.get("controller") is True]
        if len(controllers) != len(refs):
            self.warn(node, "owner references that are not the controller are not modelled; ignored",
                      hint="Konverge keeps one controller owner (`controller: true`)")
        if not controllers:
            return None
        return {"kind": controllers[0].get("kind", ""), "name": controllers[0].get("name", "")}

    # -- structure

    def pairs(self, node: Node) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            return {}
        return {str(k.value): (k, v) for k, v in node.value if isinstance(k, ScalarNode)}

    def fields(self, node: Node, path: str, handlers: dict[str, Handler], silent: Iterable[str] = ()):
        """A mapping read field by field: a handler per known key; unknown keys are warned about."""
        if self.null(node):
            return {}
        if not isinstance(node, MappingNode):
            return self.error(node, f"`{path}` must be a mapping")
        out: dict = {}
        silent = set(silent)
        for key_node, value in node.value:
            key = str(key_node.value)
            handler = handlers.get(key)
            if handler is not None:
                got = handler(value, f"{path}.{key}")
                if got is not SKIP:
                    out[key] = got
            elif key not in silent:
                self.warn(key_node, f"field `{path}.{key}` is not supported by Konverge; ignored")
        return out

    def list_of(self, node: Node, path: str, item: Handler):
        if self.null(node):
            return []
        if not isinstance(node, SequenceNode):
            return self.error(node, f"`{path}` must be a list")
        out = []
        for i, x in enumerate(node.value):
            got = item(x, f"{path}[{i}]")
            if got is not SKIP:
                out.append(got)
        return out

    def null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag.endswith(":null")

    # -- scalars

    def scalar(self, node: Node):
        return self._constructor.construct_object(node, deep=True)

    def string(self, node: Node, path: str):
        if not isinstance(node, ScalarNode):
            return self.error(node, f"`{path}` must be a string")
        if not node.tag.endswith(":str"):
            read = {"int": "an integer", "float": "a number", "bool": "true or false", "null": "null"}
            what = read.get(node.tag.rsplit(":", 1)[-1], "not text")
            return self.error(node, f"`{path}` must be a string, but `{node.value}` reads as {what}",
                              hint=f'quote it: "{node.value}"')
        return node.value

    def integer(self, node: Node, path: str):
        if isinstance(node, ScalarNode) and node.tag.endswith(":int"):
            return self.scalar(node)
        if isinstance(node, ScalarNode) and node.style in ('"', "'") and _INTEGER.fullmatch(node.value):
            # Kubernetes refuses it too ("cannot unmarshal string into … of type int32")
            return self.error(node, f"`{path}` must be an integer, not the string {node.style}{node.value}{node.style}",
                              hint=f"remove the quotes: {int(node.value)}")
        return self.error(node, f"`{path}` must be an integer{_found(node)}")

    def boolean(self, node: Node, path: str):
        if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
            return self.scalar(node)
        return self.error(node, f"`{path}` must be true or false{_found(node)}")

    def int_or_string(self, node: Node, path: str):
        if isinstance(node, ScalarNode) and node.tag.endswith(":int"):
            return self.scalar(node)
        if isinstance(node, ScalarNode) and node.tag.endswith(":str"):
            return node.value
        return self.error(node, f"`{path}` must be an integer or a string")

    def quantity(self, node: Node, path: str):
        if not isinstance(node, ScalarNode) or self.null(node):
            return self.error(node, f"`{path}` must be a quantity such as 250m, 0.5, 1Gi or 1e3")
        try:
            value = parse_quantity(str(node.value))
        except ValueError:
            return self.error(node, f"`{path}`: {node.value!r} is not a Kubernetes quantity",
                              hint="a number with an optional suffix: m, k, M, G, Ki, Mi, Gi, … or e3")
        if value < 0:
            return self.error(node, f"`{path}` must not be negative")
        return value

    def string_map(self, node: Node, path: str):
        if self.null(node):
            return {}
        if not isinstance(node, MappingNode):
            return self.error(node, f"`{path}` must be a mapping of strings")
        out = {}
        for k, v in node.value:
            value = self.string(v, f"{path}.{k.value}")
            if value is not SKIP:
                out[str(k.value)] = value
        return out

    def string_list(self, node: Node, path: str):
        return self.list_of(node, path, self.string)

    def label_selector(self, node: Node, path: str):
        """A LabelSelector as kinds.konv flattens it: (matchLabels, matchExpressions), each
        requirement as written, checked as Kubernetes' ValidateLabelSelectorRequirement checks
        it, with its message at the requirement's position. A null selector is None."""
        if self.null(node):
            return None
        got = self.fields(node, path, {
            "matchLabels": self.string_map,
            "matchExpressions": lambda n, p: self.list_of(n, p, self.selector_requirement),
        })
        written = self.pairs(node).get("matchExpressions", (None, None))[1]
        if got is SKIP or (isinstance(written, SequenceNode)
                           and len(got.get("matchExpressions", ())) != len(written.value)):
            return SKIP  # a requirement was refused: the selector is not read, nor reported empty
        return got.get("matchLabels", {}), got.get("matchExpressions", [])

    def selector_requirement(self, node: Node, path: str):
        got = self.fields(node, path, {"key": self.string, "operator": self.string, "values": self.string_list})
        if got is SKIP:
            return SKIP
        pairs = self.pairs(node)
        if "key" not in pairs or "operator" not in pairs:
            return self.error(node, f"`{path}` needs a `key` and an `operator`")
        if "key" not in got or "operator" not in got:
            return SKIP  # a wrong type, already reported
        op, values = got["operator"], got.get("values", [])
        if op in ("In", "NotIn"):
            if not values:
                return self.error(pairs.get("values", (None, node))[1],
                                  f"{path}.values: Required value: must be specified when `operator` is 'In' or "
                                  "'NotIn'", hint="give the label values to match, or use Exists / DoesNotExist")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                return self.error(pairs["values"][1], f"{path}.values: Forbidden: may not be specified when "
                                                      "`operator` is 'Exists' or 'DoesNotExist'",
                                  hint="leave the values out: the operator tests the key alone")
        else:
            return self.error(pairs["operator"][1], f'{path}.operator: Invalid value: "{op}": not a valid selector '
                                                    "operator",
                              hint="a label selector's operators are In, NotIn, Exists and DoesNotExist"
                                   + (" (Gt and Lt are for node affinity)" if op in ("Gt", "Lt") else ""))
        return got

    def selector(self, node: Node, path: str):
        """A workload's selector. An empty one is refused, as by Kubernetes' validation; a null
        one is left out (a Deployment's then defaults to its template's labels)."""
        got = self.label_selector(node, path)
        if got not in (None, SKIP) and not got[0] and not got[1]:
            return self.error(node, f"{path}: Invalid value: v1.LabelSelector{{MatchLabels:map[string]string(nil), "
                                    "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid "
                                    "for deployment", hint="select the template's labels with matchLabels")
        return got

    @staticmethod
    def flatten(got: dict, key: str, labels_key: str) -> None:
        """Put a selector read under `key` as kinds.konv holds it: its matchLabels under
        `labels_key`, its matchExpressions, if any, beside them; a null one is left out."""
        selector = got.pop(key, None)
        if selector is not None:
            got[labels_key] = selector[0]
            if selector[1]:
                got["matchExpressions"] = selector[1]

    # -- pods

    def container(self, node: Node, path: str, *, init: bool = False):
        handlers = {
            "name": self.string, "image": self.string, "resources": self.resources,
            "ports": lambda n, p: self.list_of(n, p, self.container_port),
            # an init container's (Always makes it a sidecar); validateContainers forbids it elsewhere
            "restartPolicy": self.string if init else self.app_restart_policy,
        }
        if not init:  # a sidecar's probes are not modelled: warned about (W302)
            handlers |= {"livenessProbe": self.probe, "readinessProbe": self.probe}
        probes = ("livenessProbe", "readinessProbe", "startupProbe")
        given = self.pairs(node)
        policy = given.get("restartPolicy", (None, None))[1]
        plain_init = init and not (isinstance(policy, ScalarNode) and policy.value == "Always")
        forbidden = [(key, given[key][0]) for key in probes if plain_init and key in given]
        for key, key_node in forbidden:  # validateInitContainers, word for word
            self.error(key_node, f"`{path}.{key}`: Forbidden: may not be set for init containers without "
                                 "restartPolicy=Always",
                       hint="an init container runs to completion: remove the probe, or make it a sidecar "
                            "with restartPolicy: Always")
        got = self.fields(node, path, handlers, silent=[key for key, _ in forbidden])
        if got is SKIP or forbidden:
            return SKIP
        resources = got.pop("resources", {})
        return {**got, **resources}

    def probe(self, node: Node, path: str):
        """A liveness or readiness probe: its handler (exec's command flattened into `exec`; an
        int-or-string port as `port` or `portName`) and timing. A timing field or threshold left
        at 0 is left out, so that the kind's default applies, as SetDefaults_Probe fills in an
        unset one; so is an httpGet's empty path ("/") and scheme (HTTP). admission.konv
        validates the rest as validateProbe does. Its terminationGracePeriodSeconds and an
        httpGet's httpHeaders are not modelled (W302)."""
        def port(got: dict, n: Node, p: str):
            value = self.int_or_string(n, p)
            if value is not SKIP:
                got["port" if isinstance(value, int) else "portName"] = value
            return SKIP

        def action(fields: dict[str, Handler], with_port: bool):
            def read(n: Node, p: str):
                got: dict = {}
                handlers = dict(fields)
                if with_port:
                    handlers["port"] = lambda pn, pp: port(got, pn, pp)
                read_fields = self.fields(n, p, handlers)
                if read_fields is SKIP:
                    return SKIP
                got.update(read_fields)
                for key in ("path", "scheme"):
                    if got.get(key) == "":
                        del got[key]
                if "port" not in got and "portName" not in got:
                    got["port"] = 0  # upstream's zero (IntOrString, or gRPC's int32): refused as port 0 by admission
                return got
            return read

        def command(n: Node, p: str):
            got = self.fields(n, p, {"command": lambda cn, cp: self.list_of(cn, cp, self.string)})
            return got if got is SKIP else got.get("command", [])

        got = self.fields(node, path, {
            "exec": command,
            "httpGet": action({"path": self.string, "host": self.string, "scheme": self.string}, True),
            "tcpSocket": action({"host": self.string}, True),
            "grpc": action({"port": self.integer, "service": self.string}, False),
            "initialDelaySeconds": self.integer, "timeoutSeconds": self.integer, "periodSeconds": self.integer,
            "successThreshold": self.integer, "failureThreshold": self.integer,
        })
        if got is SKIP:
            return SKIP
        for key in ("timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
            if got.get(key) == 0:
                del got[key]
        return got

    def app_restart_policy(self, node: Node, path: str) -> _Skip:
        return self.error(node, f"`{path}`: Forbidden: may not be set for non-init containers",
                          hint="restartPolicy: Always makes an init container a sidecar: move the container "
                               "to initContainers, or remove the field")

    def resources(self, node: Node, path: str):
        def amounts(n, p):
            return self.fields(n, p, {"cpu": self.quantity, "memory": self.quantity})

        got = self.fields(node, path, {"requests": amounts, "limits": amounts})
        if got is SKIP:
            return SKIP
        requests, limits = got.get("requests", {}), got.get("limits", {})
        given = self.pairs(node)
        request_nodes = self.pairs(given.get("requests", (None, None))[1])
        limit_nodes = self.pairs(given.get("limits", (None, None))[1])
        above = [(name, value) for name, (_, value) in request_nodes.items()
                 if name in requests and name in limits and requests[name] > limits[name]]
        for name, value in above:  # Kubernetes' ValidateResourceRequirements, word for word
            self.error(value, f"`{path}.requests`: Invalid value: \"{quantity_text(value.value)}\": must be less "
                              f"than or equal to {name} limit of {quantity_text(limit_nodes[name][1].value)}",
                       hint="Kubernetes refuses a request above its limit: lower the request or raise the limit")
        if above:
            return SKIP
        # Kubernetes copies a limit to the request when only the limit is given; Konverge
        # schedules by requests and does not enforce limits.
        return {**got.get("limits", {}), **got.get("requests", {})}

    def container_port(self, node: Node, path: str):
        """A container port. Its hostIP is not modelled: every host port binds all the node's
        addresses, as Kubernetes' default 0.0.0.0 does (which conflicts with the same port on any
        address). So 0.0.0.0 is read silently; another address beside a host port is warned about,
        as it may keep a pod off a node that Kubernetes would bind it to (without a host port,
        HostPortInfo ignores the address, and so does Konverge, silently)."""
        host_ips: list[tuple[Node, str, object]] = []

        def host_ip(n: Node, p: str):
            host_ips.append((n, p, self.string(n, p)))
            return SKIP
        got = self.fields(node, path, {
            "name": self.string, "containerPort": self.integer, "protocol": self.string, "hostPort": self.integer,
            "hostIP": host_ip,
        })
        bound = got is not SKIP and isinstance(got.get("hostPort"), int) and got["hostPort"] > 0
        for n, p, value in host_ips:
            if bound and value is not SKIP and value not in ("", "0.0.0.0"):
                self.warn(n, f"`{p}: {value}` is not modelled: Konverge binds a host port on every address "
                             "of its node (0.0.0.0), so it conflicts with the same port and protocol on any "
                             "other; ignored")
        return got

    def toleration(self, node: Node, path: str):
        return self.fields(node, path, {
            "key": self.string, "operator": self.string, "value": self.string, "effect": self.string,
            "tolerationSeconds": self.integer,
        })

    def affinity(self, node: Node, path: str):
        got = self.fields(node, path, {
            "nodeAffinity": self.node_affinity,
            "podAffinity": self.pod_affinity,
            "podAntiAffinity": lambda n, p: self.pod_affinity(n, p, anti=True),
        })
        if got is SKIP:
            return SKIP
        out = dict(got.get("nodeAffinity", {}))
        for key, preferred in (("podAffinity", "preferredPodAffinity"), ("podAntiAffinity", "preferredPodAntiAffinity")):
            terms = got.get(key, {})
            if "required" in terms:
                out[key] = terms["required"]
            if "preferred" in terms:
                out[preferred] = terms["preferred"]
        return out

    def node_affinity(self, node: Node, path: str):
        def term(n, p):
            return self.fields(n, p, {"matchExpressions": lambda m, q: self.list_of(m, q, self.requirement),
                                      "matchFields": lambda m, q: self.list_of(m, q, self.requirement)})

        def preferred(n, p):
            return self.fields(n, p, {"weight": self.integer, "preference": term})

        got = self.fields(node, path, {
            "requiredDuringSchedulingIgnoredDuringExecution": lambda n, p: self.fields(n, p, {
                "nodeSelectorTerms": lambda m, q: self.list_of(m, q, term)}),
            "preferredDuringSchedulingIgnoredDuringExecution": lambda n, p: self.list_of(n, p, preferred),
        })
        if got is SKIP:
            return SKIP
        out = {}
        required = got.get("requiredDuringSchedulingIgnoredDuringExecution")
        if required:
            out["requiredNodeTerms"] = required.get("nodeSelectorTerms", [])
        if "preferredDuringSchedulingIgnoredDuringExecution" in got:
            out["preferredNodeTerms"] = got["preferredDuringSchedulingIgnoredDuringExecution"]
        return out

    def requirement(self, node: Node, path: str):
        return self.fields(node, path, {"key": self.string, "operator": self.string, "values": self.string_list})

    def pod_affinity(self, node: Node, path: str, *, anti: bool = False):
        """A PodAffinity or PodAntiAffinity: its required terms and its preferred (weighted) ones,
        as {"required": […], "preferred": […]} for those given. A term's topologyKey, and a
        weighted term's weight, left out are read as Go decodes them, "" and 0, so that admission
        refuses them with upstream's messages (validatePodAffinityTerm,
        validateWeightedPodAffinityTerms). A term's namespaces, namespaceSelector, matchLabelKeys
        and mismatchLabelKeys are not modelled (its pod's namespace, no keys): warned about."""
        def term(n, p, *, scores: bool = False):
            got = self.fields(n, p, {"labelSelector": self.label_selector, "topologyKey": self.string})
            if got is SKIP:
                return SKIP
            got.setdefault("topologyKey", "")
            return self.selected(n, p, got, "term", constrains=anti, scores=scores)

        def weighted(n, p):
            got = self.fields(n, p, {"weight": self.integer,
                                     "podAffinityTerm": lambda m, q: term(m, q, scores=True)})
            if got is SKIP:
                return SKIP
            got.setdefault("weight", 0)
            got.setdefault("podAffinityTerm", {"topologyKey": ""})
            return got

        got = self.fields(node, path, {
            "requiredDuringSchedulingIgnoredDuringExecution": lambda n, p: self.list_of(n, p, term),
            "preferredDuringSchedulingIgnoredDuringExecution": lambda n, p: self.list_of(n, p, weighted),
        })
        if got is SKIP:
            return SKIP
        out = {}
        if "requiredDuringSchedulingIgnoredDuringExecution" in got:
            out["required"] = got["requiredDuringSchedulingIgnoredDuringExecution"]
        if "preferredDuringSchedulingIgnoredDuringExecution" in got:
            out["preferred"] = got["preferredDuringSchedulingIgnoredDuringExecution"]
        return out

    def spread(self, node: Node, path: str):
        got = self.fields(node, path, {
            "maxSkew": self.integer, "topologyKey": self.string, "whenUnsatisfiable": self.string,
            "labelSelector": self.label_selector,
        })
        return got if got is SKIP else self.selected(node, path, got, "constraint", constrains=True)

    def selected(self, node: Node, path: str, got: dict, what: str, *, constrains: bool, scores: bool = False):
        """A term or constraint is read as it is: a null (or missing) `labelSelector` matches no
        pod, in Kubernetes and in the rules alike. That is seldom meant, so it is a warning: an
        anti-affinity term or a spread constraint then constrains nothing, a required affinity
        term can never be met, and a preferred term scores nothing."""
        if got.get("labelSelector") is None and not self.selector_unreadable(node):
            self.warn(node, f"`{path}` has no labelSelector, so in Kubernetes it matches no pod and "
                            + ("the term scores nothing" if scores
                               else f"the {what} constrains nothing" if constrains
                               else "the pod can never be scheduled"),
                      hint="give it a labelSelector (`{}` matches every pod)")
        self.flatten(got, "labelSelector", "labelSelector")
        return got

    def selector_unreadable(self, node: Node) -> bool:
        """Whether the `labelSelector` is there but could not be read (its error is reported)."""
        value = self.pairs(node).get("labelSelector", (None, None))[1]
        return value is not None and not self.null(value)

    def pod_spec(self, node: Node, path: str, *, template: bool) -> dict:
        handlers: dict[str, Handler] = {
            "containers": lambda n, p: self.list_of(n, p, self.container),
            "initContainers": lambda n, p: self.list_of(n, p, lambda m, q: self.container(m, q, init=True)),
            "nodeSelector": self.string_map,
            "tolerations": lambda n, p: self.list_of(n, p, self.toleration),
            "affinity": self.affinity,
            "topologySpreadConstraints": lambda n, p: self.list_of(n, p, self.spread),
            "restartPolicy": self.string,
            "terminationGracePeriodSeconds": self.integer,
            "schedulerName": self.string,
            "serviceAccountName": self.string,
            "serviceAccount": self.string,  # the deprecated alias of serviceAccountName
        }
        if not template:
            handlers.update(nodeName=self.string)
        got = self.fields(node, path, handlers)
        if got is SKIP:
            return {}
        if "nodeName" in got:
            got["node"] = got.pop("nodeName")
        alias = got.pop("serviceAccount", None)
        if alias and not got.get("serviceAccountName"):
            got["serviceAccountName"] = alias
        if not got.get("serviceAccountName"):
            got.pop("serviceAccountName", None)  # empty: the default
        return got

    def template(self, node: Node, path: str):
        out: dict = {}

        def meta(n, p):
            got = self.fields(n, p, {
                "labels": self.string_map,
                "annotations": self.annotations(
                    why="a pod template carries labels only, so its pods are created without these"),
            }, silent=("name",))
            if got is not SKIP:
                out.update(got)
            return SKIP

        def spec(n, p):
            out.update(self.pod_spec(n, p, template=True))
            return SKIP

        got = self.fields(node, path, {"metadata": meta, "spec": spec})
        return got if got is SKIP else out


def _found(node: Node) -> str:
    return f", not `{node.value}`" if isinstance(node, ScalarNode) else ""


# ---- the kinds -------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class _Kind:
    spec: Callable[[_Reader, Node, dict, dict], None]
    status: Callable[[_Reader, Node, dict], None] | None = None
    finish: Callable[[_Reader, Node, dict, dict], object] | None = None


def _no_spec(kind: str):
    def spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
        r.fields(node, "spec", {}, silent=("finalizers",) if kind == "Namespace" else ())
    return spec


def _pod_spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
    body.update(r.pod_spec(node, "spec", template=False))


def _workload(kind: str):
    def spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
        handlers: dict[str, Handler] = {"replicas": r.integer, "selector": r.selector, "template": r.template,
                                        "minReadySeconds": r.integer}
        rolling: list[Node] = []
        if kind == "Deployment":
            handlers["strategy"] = _strategy(r, {"maxSurge": r.int_or_string, "maxUnavailable": r.int_or_string},
                                             rolling)
            handlers["progressDeadlineSeconds"] = r.integer  # validated by admission (ValidateDeploymentSpec)
        got = r.fields(node, "spec", handlers)
        if got is SKIP:
            return
        r.flatten(got, "selector", "selector")
        strategy = _take_strategy(got, body, "strategy", "strategy")
        # rollingUpdate's two fields sit beside the Deployment's `strategy`, and admission refuses
        # them with Recreate as the API server does. An empty rollingUpdate is refused here, as
        # there is nothing beside the type to say it was given (ValidateDeploymentStrategy refuses
        # any non-nil one with Recreate).
        if strategy.get("type") == "Recreate" and rolling and not strategy.get("rollingUpdate"):
            r.error(rolling[0], "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
                                "`type` is 'Recreate'", hint="drop `rollingUpdate`, or set it to null")
    return spec


def _strategy(r: _Reader, fields: dict[str, Handler], rolling: list[Node]) -> Handler:
    """The reader of a Deployment's `strategy` or a StatefulSet's `updateStrategy`: its type and its
    rollingUpdate's `fields`. Where a rollingUpdate mapping is, even an empty one, goes to
    `rolling` (not a null, which is nil), for the error that refuses it beside the other type."""
    def rolling_update(m: Node, q: str):
        if isinstance(m, MappingNode):
            rolling.append(m)
        return r.fields(m, q, fields)
    return lambda n, p: r.fields(n, p, {"type": r.string, "rollingUpdate": rolling_update})


def _take_strategy(got: dict, body: dict, key: str, field: str) -> dict:
    """Moves the spec's fields read into the body: the strategy under `key` becomes the body's
    `field` (its type), its rollingUpdate's fields sit beside it. Returns the strategy read."""
    strategy = got.pop(key, None) or {}
    body.update(got)
    if "type" in strategy:
        body[field] = strategy["type"]
    body.update(strategy.get("rollingUpdate", {}))
    return strategy


def _daemonset_spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
    """apps/v1 DaemonSetSpec: selector, template and updateStrategy (RollingUpdate's maxUnavailable,
    or OnDelete). A maxSurge other than 0 is warned about: Konverge replaces a node's pod only once
    the old one is gone. With it, upstream allows maxUnavailable 0 (surge only); Konverge, which
    must then let something go, takes maxUnavailable 1 and says so."""
    surge: list = []  # the maxSurge other than 0, with its node and where its warning goes

    def max_surge(n, p):
        value = r.int_or_string(n, p)
        if value not in (SKIP, 0, "0", "0%"):
            surge.append((n, p, value, len(r.diagnostics)))
        return SKIP

    got = r.fields(node, "spec", {
        "selector": r.selector, "template": r.template,
        "updateStrategy": lambda n, p: r.fields(n, p, {
            "type": r.string,
            "rollingUpdate": lambda m, q: r.fields(m, q, {"maxUnavailable": r.int_or_string, "maxSurge": max_surge}),
        }),
    })
    if got is SKIP:
        return
    r.flatten(got, "selector", "selector")
    strategy = got.pop("updateStrategy", None) or {}
    body.update(got)
    if "type" in strategy:
        body["updateStrategy"] = strategy["type"]
    rolling = strategy.get("rollingUpdate", {})
    for n, p, value, at in surge:  # warned about once maxUnavailable is known, in the document's order
        if str(rolling.get("maxUnavailable")) in ("0", "0%"):
            rolling["maxUnavailable"] = 1
            r.warn(n, f"`{p}: {value}` is not modelled; Konverge rolls DaemonSets out with maxSurge 0, "
                      "so it takes maxUnavailable 1 in place of 0: a node's old pod goes before its new one starts",
                   hint="set maxUnavailable instead of maxSurge to say how many nodes may go without the pod at once")
        else:
            r.warn(n, f"`{p}: {value}` is not modelled; Konverge rolls DaemonSets out with maxSurge 0",
                   hint="drop it, or set maxUnavailable instead")
        r.diagnostics.insert(at, r.diagnostics.pop())
    body.update(rolling)


def _statefulset_spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
    """apps/v1 StatefulSetSpec: replicas, selector, template, serviceName, podManagementPolicy and
    updateStrategy (RollingUpdate's partition, or OnDelete). Konverge models no volumes, so
    volumeClaimTemplates and persistentVolumeClaimRetentionPolicy are warned about (W302) by
    name; so are the other fields it does not read (minReadySeconds, …). `ordinals.start` is the
    flat `startOrdinal`."""
    rolling: list[Node] = []

    def no_claims(n: Node, p: str):
        r.warn(n, f"`{p}` is not modelled: Konverge has no volumes or PersistentVolumeClaims, so the pods "
                  "are created without their claims", hint="the pods' ordering, placement and identity are still modelled")
        return SKIP

    got = r.fields(node, "spec", {
        "replicas": r.integer, "selector": r.selector, "template": r.template, "serviceName": r.string,
        "podManagementPolicy": r.string, "updateStrategy": _strategy(r, {"partition": r.integer}, rolling),
        "volumeClaimTemplates": no_claims, "persistentVolumeClaimRetentionPolicy": no_claims,
        "ordinals": lambda n, p: r.fields(n, p, {"start": r.integer}),
    })
    if got is SKIP:
        return
    r.flatten(got, "selector", "selector")
    ordinals = got.pop("ordinals", None)
    if ordinals not in (None, SKIP) and "start" in ordinals:
        got["startOrdinal"] = ordinals["start"]
    strategy = _take_strategy(got, body, "updateStrategy", "updateStrategy")
    if strategy.get("type") == "OnDelete" and rolling:
        # ValidateStatefulSetSpec refuses any rollingUpdate beside OnDelete, even one with partition 0,
        # which admission (statefulset_strategy_error) cannot tell from none; printed as field.Invalid
        # prints the internal RollingUpdateStatefulSetStrategy.
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        r.error(rolling[0], "spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSetStrategy"
                            f"{{Partition:{partition}, MaxUnavailable:(*intstr.IntOrString)(nil)}}: only allowed for "
                            "updateStrategy 'RollingUpdate'", hint="drop `rollingUpdate`, or set the type to RollingUpdate")


def _job_spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
    """batch/v1 JobSpec: the counts, the selector (generated by the API server unless
    manualSelector: rules/job.konv), the template, completionMode, suspend and
    ttlSecondsAfterFinished and podFailurePolicy (its rules as batch/v1 has them, judged by the
    API server: rules/job.konv); the rest (successPolicy, backoffLimitPerIndex, …) is warned
    about. As SetDefaults_Job, a job with parallelism and no completions is a work queue
    (completions none), and an onPodConditions pattern without a status is "True". A manifest
    cannot say how long a container runs: each of the template's containers is taken to exit 0 as
    soon as it starts (`runFor: 0s`), so that no onExitCodes rule ever matches one."""
    def exit_codes(n, p):
        return r.fields(n, p, {"containerName": r.string, "operator": r.string,
                               "values": lambda m, q: r.list_of(m, q, r.integer)})

    def pattern(n, p):
        return r.fields(n, p, {"type": r.string, "status": r.string})

    def rule(n, p):
        return r.fields(n, p, {"action": r.string, "onExitCodes": exit_codes,
                               "onPodConditions": lambda m, q: r.list_of(m, q, pattern)})

    def policy(n, p):
        return r.fields(n, p, {"rules": lambda m, q: r.list_of(m, q, rule)})

    got = r.fields(node, "spec", {
        "parallelism": r.integer, "completions": r.integer, "activeDeadlineSeconds": r.integer,
        "backoffLimit": r.integer, "selector": r.selector, "manualSelector": r.boolean, "template": r.template,
        "completionMode": r.string, "suspend": r.boolean, "ttlSecondsAfterFinished": r.integer,
        "podFailurePolicy": policy,
    })
    if got is SKIP:
        return
    r.flatten(got, "selector", "selector")
    if "completions" not in got and "parallelism" in got:
        got["completions"] = None
    for c in (got.get("template") or {}).get("containers", []):
        c.setdefault("runFor", 0)
    body.update(got)


def _ip_family(text: str) -> int | None:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def _service_spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
    def port(n, p):
        return r.fields(n, p, {"name": r.string, "port": r.integer, "targetPort": r.int_or_string,
                               "protocol": r.string, "nodePort": r.integer})

    def cluster_ip(n, p):
        value = r.string(n, p)
        return SKIP if value == "" else value  # "": the allocator's, as when left out

    listed: list = []  # spec.clusterIPs, with its node

    def cluster_ips(n, p):
        got = r.string_list(n, p)
        if got is not SKIP and got:
            listed.append((n, got))
        return SKIP

    got = r.fields(node, "spec", {
        "selector": r.string_map, "ports": lambda n, p: r.list_of(n, p, port), "clusterIP": cluster_ip,
        "clusterIPs": cluster_ips,
        "type": r.string, "sessionAffinity": r.string, "publishNotReadyAddresses": r.boolean,
        "externalTrafficPolicy": r.string, "allocateLoadBalancerNodePorts": r.boolean,
    })
    if got is SKIP:
        return
    # ValidateServiceClusterIPsRelatedFields: clusterIPs is given beside clusterIP, its first
    # value the same (the strategy's normalizeClusterIPs fills clusterIPs from clusterIP, never
    # the other way), 'None' alone, at most one address of each family. Konverge is single-stack:
    # the IPv6 address of a dual-stack pair is warned about and ignored.
    for n, ips in listed:
        shown = "[" + ", ".join(json.dumps(ip) for ip in ips) + "]"
        if "clusterIP" not in got:
            r.error(n, f"spec.clusterIPs: Invalid value: {shown}: must be empty when `clusterIP` is not specified",
                    hint=f"give `clusterIP: {ips[0]}` too, or leave `clusterIPs` out")
        elif got["clusterIP"] != ips[0]:
            r.error(n, f"spec.clusterIPs: Invalid value: {shown}: first value must match `clusterIP`",
                    hint="give the same address in both, or leave one out")
        elif ips[0] == "None" and len(ips) > 1:
            r.error(n, f"spec.clusterIPs: Invalid value: {shown}: 'None' must be the first and only value")
        elif len(ips) > 2:
            r.error(n, f"spec.clusterIPs: Invalid value: {shown}: may only hold up to 2 values")
        elif len(ips) == 2 and _ip_family(ips[0]) is not None and _ip_family(ips[0]) == _ip_family(ips[1]):
            r.error(n, f"spec.clusterIPs: Invalid value: {shown}: may specify no more than one IP for each IP family")
        elif len(ips) > 1:
            r.warn(n, f"dual-stack `spec.clusterIPs` are not modelled; only {ips[0]} is used",
                   hint="Konverge's service network is IPv4 alone (10.96.0.0/12)")
    body.update(got)


def _node_spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
    def taint(n, p):
        return r.fields(n, p, {"key": r.string, "value": r.string, "effect": r.string}, silent=("timeAdded",))

    got = r.fields(node, "spec", {
        "taints": lambda n, p: r.list_of(n, p, taint), "unschedulable": r.boolean,
        "podCIDRs": r.string_list, "podCIDR": r.string,
    }, silent=("providerID",))
    if got is SKIP:
        return
    single = got.pop("podCIDR", None)
    if single is not None and "podCIDRs" not in got:
        got["podCIDRs"] = [single]
    body.update(got)


def _node_status(r: _Reader, node: Node, body: dict) -> None:
    pairs = r.pairs(node)
    resources = {}
    for source in ("capacity", "allocatable"):  # allocatable wins where both are given
        value = pairs.get(source, (None, None))[1]
        if value is None:
            continue
        for key, (_, v) in r.pairs(value).items():
            if key in ("cpu", "memory"):
                q = r.quantity(v, f"status.{source}.{key}")
                if q is not SKIP:
                    resources[key] = q
            elif key == "pods":
                q = r.quantity(v, f"status.{source}.pods")
                if q is not SKIP:
                    resources["pods"] = int(q)
    addresses = pairs.get("addresses", (None, None))[1]
    if addresses is not None:  # the InternalIP is where a control-plane node's API server listens
        items = r.list_of(addresses, "status.addresses", lambda n, p: r.fields(
            n, p, {"type": r.string, "address": r.string}))
        for item in items if items is not SKIP else []:
            if item.get("type") == "InternalIP" and "address" in item:
                resources["internalIP"] = item["address"]
                break
    body.update(resources)


def _node_finish(r: _Reader, doc: Node, obj: dict, body: dict):
    missing = [k for k in ("cpu", "memory") if k not in body]
    if missing:
        r.error(doc, f"node {obj['name']} gives no {' or '.join(missing)}", code=E_MISSING,
                hint="set status.allocatable (or status.capacity) cpu and memory: they are what the "
                     "scheduler fits pods into")
        return SKIP
    if CONTROL_PLANE_LABEL in obj.get("labels", {}):
        body["controlPlane"] = True
    return None


# The kinds whose scale the HPA writes (rules/controllers.konv).
SCALED_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")


def _hpa_spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
    def target_ref(n, p):
        got = r.fields(n, p, {"kind": r.string, "name": r.string}, silent=("apiVersion",))
        if got is SKIP:
            return SKIP
        if "name" not in got:
            return SKIP
        # A Deployment's name alone, as a spec writes it; another kind as KIND/NAME, which the
        # HPA of rules/controllers.konv scales if it is a StatefulSet or a ReplicaSet.
        kind = got.get("kind", "Deployment")
        if kind not in SCALED_KINDS:
            r.warn(n, f"Konverge scales Deployments, StatefulSets and ReplicaSets only, not {kind}: "
                      "this autoscaler scales nothing")
        # a name with a `/` stays KIND/NAME, so that the API server refuses it as upstream does
        # ("may not contain '/'") rather than reading its first part as the kind
        plain = kind == "Deployment" and "/" not in got["name"]
        return got["name"] if plain else f"{kind}/{got['name']}"

    def metric(n, p):
        got = r.fields(n, p, {"type": r.string, "resource": lambda m, q: r.fields(m, q, {
            "name": r.string,
            "target": lambda t, s: r.fields(t, s, {"type": r.string, "averageUtilization": r.integer}),
        })})
        if got is SKIP:
            return SKIP
        resource = got.get("resource", {})
        if got.get("type", "Resource") != "Resource" or resource.get("name") != "cpu" \
                or "averageUtilization" not in resource.get("target", {}):
            r.warn(n, "only a cpu Resource metric with averageUtilization is modelled; this metric is ignored")
            return SKIP
        return resource["target"]["averageUtilization"]

    got = r.fields(node, "spec", {
        "scaleTargetRef": target_ref, "minReplicas": r.integer, "maxReplicas": r.integer,
        "metrics": lambda n, p: r.list_of(n, p, metric),
        "targetCPUUtilizationPercentage": r.integer,  # autoscaling/v1
    })
    if got is SKIP:
        return
    if "scaleTargetRef" in got:
        body["target"] = got["scaleTargetRef"]
    for key in ("minReplicas", "maxReplicas"):
        if key in got:
            body[key] = got[key]
    cpu = got.get("metrics") or ([got["targetCPUUtilizationPercentage"]]
                                 if "targetCPUUtilizationPercentage" in got else [])
    if cpu:
        body["targetCPUUtilization"] = cpu[0]


def _hpa_finish(r: _Reader, doc: Node, obj: dict, body: dict):
    for key, what in (("target", "spec.scaleTargetRef.name"), ("maxReplicas", "spec.maxReplicas")):
        if key not in body:
            r.error(doc, f"HorizontalPodAutoscaler {obj['name']} has no `{what}`", code=E_MISSING)
            return SKIP
    return None


def _pdb_spec(r: _Reader, node: Node, body: dict, obj: dict) -> None:
    """policy/v1 PodDisruptionBudgetSpec (rules/disruption.konv): the selector (null selects no
    pod, `{}` every pod of the namespace), minAvailable or maxUnavailable (a count or a
    percentage such as "50%"; the API server refuses both, or a bad one, with upstream's
    messages) and unhealthyPodEvictionPolicy."""
    got = r.fields(node, "spec", {
        "selector": r.label_selector, "minAvailable": r.int_or_string, "maxUnavailable": r.int_or_string,
        "unhealthyPodEvictionPolicy": r.string,
    })
    if got is SKIP:
        return
    r.flatten(got, "selector", "selector")
    body.update(got)


def _workload_finish(r: _Reader, doc: Node, obj: dict, body: dict):
    """A workload needs its template; an apps/v1 one its selector too (ValidateDeploymentSpec,
    ValidateReplicaSetSpec, ValidateDaemonSetSpec, ValidateStatefulSetSpec: `spec.selector:
    Required value` for a nil one). A Job's is generated (job.konv), and a .konv spec may leave a
    workload's out (its template's labels, as extensions/v1beta1 defaulted it)."""
    if "template" not in body:
        r.error(doc, f"{obj['kind']} {obj['name']} has no `spec.template`", code=E_MISSING)
        return SKIP
    spec_key, spec = r.pairs(doc).get("spec", (doc, None))
    given = r.pairs(spec).get("selector") if spec is not None else None
    if obj["kind"] != "Job" and (given is None or r.null(given[1])):  # a refused one has its own error
        r.error(spec_key, "spec.selector: Required value",
                hint="apps/v1 requires a selector: add `selector: {matchLabels: …}` with the template's labels")
        return SKIP
    return None


_KINDS: dict[str, _Kind] = {
    "Namespace": _Kind(_no_spec("Namespace")),
    "ServiceAccount": _Kind(_no_spec("ServiceAccount")),
    "Node": _Kind(_node_spec, _node_status, _node_finish),
    "Pod": _Kind(_pod_spec),
    "ReplicaSet": _Kind(_workload("ReplicaSet"), finish=_workload_finish),
    "Deployment": _Kind(_workload("Deployment"), finish=_workload_finish),
    "DaemonSet": _Kind(_daemonset_spec, finish=_workload_finish),
    "StatefulSet": _Kind(_statefulset_spec, finish=_workload_finish),
    "Job": _Kind(_job_spec, finish=_workload_finish),
    "Service": _Kind(_service_spec),
    "HorizontalPodAutoscaler": _Kind(_hpa_spec, finish=_hpa_finish),
    "PodDisruptionBudget": _Kind(_pdb_spec),
}
SUPPORTED_KINDS = tuple(sorted(_KINDS))

__all__ = ["API_VERSIONS", "Manifests", "SUPPORTED_KINDS", "is_manifest", "load_manifests", "loads", "parse_quantity"]
