"""Which DynamoDB operations the code can make, read from its source: the IAM policies' oracle.

Every DynamoDB call of the registry goes through `Table.api_call("<boto3 method>")` or
`metrics.registry_call("<boto3 method>")` (realtime/registry/dynamodb/client.py). This module
parses the registry's source (`ast`, nothing is imported or run), finds those call sites,
follows calls between the registry's functions and methods, and so knows, for each method of
the registry, every DynamoDB operation it may end in. Then it reads which registry methods a
part of the code uses (`registry.<method>` or `<something>.registry.<method>`), so that a new
DynamoDB call, or a new use of a method that makes one, changes the answer without anybody
updating a list.
"""

import ast
from collections.abc import Iterable
from pathlib import Path

from realtime.metrics import REGISTRY_OPERATIONS

__all__ = ["REALTIME", "operations_of_methods", "registry_methods_used", "transaction_parts"]

REALTIME = Path(__file__).resolve().parents[2] / "realtime"
_REGISTRY = REALTIME / "registry"
_CALLS = {"api_call", "registry_call"}  # the two doors every DynamoDB call goes through


def _modules() -> dict[str, ast.Module]:
    """The registry's contract (base.py) and the DynamoDB backend's modules, by dotted name."""
    paths = [_REGISTRY / "base.py", *sorted((_REGISTRY / "dynamodb").glob("*.py"))]
    return {
        ".".join(path.relative_to(REALTIME.parent).with_suffix("").parts): ast.parse(
            path.read_text(), filename=str(path)
        )
        for path in paths
    }


def _imported_names(module: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it stands for (`batches` -> realtime.registry.dynamodb.batches,
    `to_item` -> realtime.registry.dynamodb.codec.to_item)."""
    names = {}
    for node in module.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _strings_assigned(function: ast.AST, name: str) -> set[str]:
    """String constants assigned to `name` anywhere in `function` (`operation = "scan"`)."""
    found = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        named = any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        if named and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            found.add(node.value.value)
    return found


def _parameters(function: ast.AST) -> set[str]:
    arguments = getattr(function, "args", None)
    if arguments is None:
        return set()
    return {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}


def _direct_operations(function: ast.AST) -> set[str]:
    """boto3 method names passed to the two doors inside `function`."""
    found = set()
    for node in ast.walk(function):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        callee = node.func
        name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", None)
        if name not in _CALLS:
            continue
        argument = node.args[0]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            found.add(argument.value)
        elif isinstance(argument, ast.Name):
            if argument.id in _parameters(function):
                continue  # a door itself (Table.api_call): its callers name the operation
            values = _strings_assigned(function, argument.id)
            if not values:
                raise ValueError(f"cannot tell what {name}({argument.id}) calls")
            found |= values
        else:
            raise ValueError(f"cannot tell what {ast.unparse(node)} calls")
    return found


def _references(function: ast.AST, module_name: str, imported: dict[str, str]) -> set[str]:
    """What `function` may call: `self.<name>` (a method or an attribute set from methods),
    `<imported module>.<function>`, and plain names of this module or imported ones."""
    found = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "self":
                found.add(f"self.{node.attr}")
            elif node.value.id in imported:
                found.add(f"{imported[node.value.id]}.{node.attr}")
        elif isinstance(node, ast.Name):
            found.add(imported.get(node.id, f"{module_name}.{node.id}"))
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(what each function may call, the operations each makes itself). Functions are keyed
    `module.function`; methods of the registry classes `self.method`, one namespace for the
    contract and its backend (the backend's methods override the contract's), and so are
    attributes that `__init__` sets from methods (the coalescers)."""
    edges: dict[str, set[str]] = {}
    direct: dict[str, set[str]] = {}
    for module_name, module in _modules().items():
        imported = _imported_names(module)
        for node in module.body:
            if isinstance(node, ast.FunctionDef):
                key = f"{module_name}.{node.name}"
                edges[key] = _references(node, module_name, imported)
                direct[key] = _direct_operations(node)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        continue
                    key = f"self.{item.name}"
                    edges[key] = _references(item, module_name, imported)
                    direct[key] = _direct_operations(item)
                    for assign in ast.walk(item):
                        if isinstance(assign, ast.Assign):
                            for target in assign.targets:
                                if isinstance(target, ast.Attribute) and ast.unparse(
                                    target.value
                                ) == ("self"):
                                    edges.setdefault(f"self.{target.attr}", set()).update(
                                        _references(assign.value, module_name, imported)
                                    )
    return edges, direct


def operations_of_methods(methods: Iterable[str]) -> set[str]:
    """DynamoDB API names ("PutItem") that calling these registry methods may end in.

    Raises:
        ValueError: a call site passes a boto3 method that metrics.REGISTRY_OPERATIONS does not
            name (its calls would be counted as "other", and no policy could be checked).
    """
    edges, direct = _graph()
    seen: set[str] = set()
    pending = [f"self.{method}" for method in methods]
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        pending.extend(edges.get(key, ()))
    boto3_methods = set().union(*(direct.get(key, set()) for key in seen))
    unknown = boto3_methods - REGISTRY_OPERATIONS.keys()
    if unknown:
        raise ValueError(f"registry calls not in metrics.REGISTRY_OPERATIONS: {sorted(unknown)}")
    return {REGISTRY_OPERATIONS[name] for name in boto3_methods}


def registry_methods_used(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Registry method name -> the files (relative to realtime/) that use it, from
    `registry.<name>` and `<...>.registry.<name>` in the given source files."""
    used: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "registry") or (
                isinstance(owner, ast.Attribute) and owner.attr == "registry"
            ):
                used.setdefault(node.attr, set()).add(str(path.relative_to(REALTIME)))
    return used


def transaction_parts() -> set[str]:
    """The kinds of write ("Put", "Update", ...) inside the registry's TransactWriteItems calls:
    IAM authorises a transaction as those writes, not as an action of its own."""
    parts = set()
    for module in _modules().values():
        for node in ast.walk(module):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and first.value == "transact_write_items"):
                continue
            for keyword in node.keywords:
                if keyword.arg == "TransactItems" and isinstance(keyword.value, ast.List):
                    for element in keyword.value.elts:
                        if not isinstance(element, ast.Dict):
                            raise ValueError(f"cannot read {ast.unparse(element)}")
                        parts.update(key.value for key in element.keys if key is not None)
    return parts
