"""DynamoDB's expression grammar, read into trees: conditions, filters, key conditions,
updates and projections, for the subset bench.fake_dynamodb speaks (its docstring names it).

Anything outside that subset is refused here, before anything runs, with a ValidationException
that says so: an expression is never silently misread.
"""

import re

from bench.fake_dynamodb.errors import DynamoError, invalid, unsupported
from bench.fake_dynamodb.values import COMPARISONS

_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><>|<=|>=|[=<>(),+\-\[\].]))"
)
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"}
_CONDITION_FUNCTIONS = {"attribute_exists", "attribute_not_exists", "begins_with"}
_UNSUPPORTED_FUNCTIONS = {"contains", "size", "attribute_type", "list_append"}


class Expression:
    """A parsed expression: its tree, the placeholders it uses and, once compiled, `fn`."""

    __slots__ = ("fn", "names", "tree", "values")

    def __init__(self, tree, names: set[str], values: set[str]):
        self.tree = tree
        self.names = frozenset(names)
        self.values = frozenset(values)
        self.fn = None


class Parser:
    """Recursive descent over DynamoDB's expression grammar (the subset this package speaks).

    Trees are tuples: ("or"|"and", a, b), ("not", a), ("cmp", op, x, y), ("between", x, lo,
    hi), ("in", x, [ys]), ("func", name, [args]); operands ("path", token), ("value", token),
    ("+"|"-", a, b), ("if_not_exists", path, operand).
    """

    def __init__(self, text: str, what: str):
        if not isinstance(text, str) or not text.strip():
            raise invalid(f"Invalid {what}: The expression can not be empty;")
        self.text = text
        self.what = what
        self.tokens: list[tuple[str, str]] = []
        position, end = 0, len(text.rstrip())
        while position < end:
            match = _TOKEN.match(text, position)
            if not match:
                raise self.error(f'Syntax error; token: "{text[position:].strip()[:20]}"')
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.position = 0
        self.names: set[str] = set()
        self.values: set[str] = set()

    def error(self, message: str) -> DynamoError:
        return invalid(f"Invalid {self.what}: {message}")

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.position += 1
        return token

    def keyword(self, *words: str) -> bool:
        kind, text = self.peek()
        return kind == "word" and text.upper() in words

    def expect(self, text: str) -> None:
        kind, found = self.take()
        if found != text or kind not in ("op", "word"):
            raise self.error(f'Syntax error; expected "{text}", found "{found or "<end>"}"')

    def done(self) -> None:
        if self.position < len(self.tokens):
            raise self.error(f'Syntax error; token: "{self.peek()[1]}"')

    def expression(self, tree) -> Expression:
        self.done()
        return Expression(tree, self.names, self.values)

    # paths and operands

    def path(self):
        kind, text = self.take()
        if kind == "name":
            self.names.add(text)
        elif kind != "word" or text.upper() in _KEYWORDS:
            raise self.error(f'Syntax error; expected an attribute, found "{text or "<end>"}"')
        if self.peek()[1] in (".", "["):
            raise unsupported(f"Nested document path in {self.what}")
        return ("path", text)

    def operand(self):
        kind, text = self.peek()
        if kind == "value":
            self.take()
            self.values.add(text)
            return ("value", text)
        if kind == "word" and self.peek(1)[1] == "(":
            raise unsupported(f"Function {text} as an operand in {self.what}")
        return self.path()

    # conditions

    def condition(self):
        tree = self.conjunction()
        while self.keyword("OR"):
            self.take()
            tree = ("or", tree, self.conjunction())
        return tree

    def conjunction(self):
        tree = self.negation()
        while self.keyword("AND"):
            self.take()
            tree = ("and", tree, self.negation())
        return tree

    def negation(self):
        if self.keyword("NOT"):
            self.take()
            return ("not", self.negation())
        return self.atom()

    def atom(self):
        kind, text = self.peek()
        if text == "(" and kind == "op":
            self.take()
            tree = self.condition()
            self.expect(")")
            return tree
        if kind == "word" and self.peek(1)[1] == "(":
            return self.function()
        left = self.operand()
        kind, text = self.peek()
        if kind == "op" and text in COMPARISONS:
            self.take()
            return ("cmp", text, left, self.operand())
        if self.keyword("BETWEEN"):
            self.take()
            low = self.operand()
            if not self.keyword("AND"):
                raise self.error("Syntax error; BETWEEN needs AND")
            self.take()
            return ("between", left, low, self.operand())
        if self.keyword("IN"):
            self.take()
            self.expect("(")
            options = [self.operand()]
            while self.peek()[1] == ",":
                self.take()
                options.append(self.operand())
            self.expect(")")
            return ("in", left, options)
        raise self.error(f'Syntax error; token: "{text or "<end>"}"')

    def function(self):
        _, name = self.take()
        if name in _UNSUPPORTED_FUNCTIONS:
            raise unsupported(f"Function {name}")
        if name not in _CONDITION_FUNCTIONS:
            raise self.error(f"Invalid function name; function: {name}")
        self.expect("(")
        args = [self.path()]
        if name == "begins_with":
            self.expect(",")
            args.append(self.operand())
        self.expect(")")
        return ("func", name, args)

    # updates

    def update(self):
        actions = []
        seen = set()
        while self.position < len(self.tokens):
            if not self.keyword("SET", "REMOVE", "ADD", "DELETE"):
                raise self.error(f'Syntax error; token: "{self.peek()[1]}"')
            clause = self.take()[1].upper()
            if clause in ("ADD", "DELETE"):
                raise unsupported(f"{clause} in an update expression")
            if clause in seen:
                raise self.error(f'The "{clause}" section can only be used once')
            seen.add(clause)
            while True:
                target = self.path()
                if clause == "SET":
                    self.expect("=")
                    actions.append(("set", target, self.update_value()))
                else:
                    actions.append(("remove", target))
                if self.peek()[1] != ",":
                    break
                self.take()
        return actions

    def update_value(self):
        left = self.update_operand()
        kind, text = self.peek()
        if kind == "op" and text in ("+", "-"):
            self.take()
            return (text, left, self.update_operand())
        return left

    def update_operand(self):
        kind, text = self.peek()
        if kind == "word" and self.peek(1)[1] == "(":
            if text != "if_not_exists":
                if text in _UNSUPPORTED_FUNCTIONS:
                    raise unsupported(f"Function {text}")
                raise self.error(f"Invalid function name; function: {text}")
            self.take()
            self.expect("(")
            path = self.path()
            self.expect(",")
            fallback = self.update_operand()
            self.expect(")")
            return ("if_not_exists", path, fallback)
        return self.operand()

    # projections

    def projection(self):
        paths = [self.path()]
        while self.peek()[1] == ",":
            self.take()
            paths.append(self.path())
        return paths
