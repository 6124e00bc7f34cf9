"""DynamoDB's error answers: the exception every layer raises and the JSON body it becomes."""


class DynamoError(Exception):
    """An error answer: HTTP 400 (or `status`) with DynamoDB's JSON error body."""

    _PREFIXES = {
        "ValidationException": "com.amazon.coral.validate#",
        "UnknownOperationException": "com.amazon.coral.service#",
        "SerializationException": "com.amazon.coral.service#",
    }

    def __init__(self, code: str, message: str, *, status: int = 400, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict:
        prefix = self._PREFIXES.get(self.code, "com.amazonaws.dynamodb.v20120810#")
        return {"__type": prefix + self.code, "message": self.message, **self.extra}


def invalid(message: str) -> DynamoError:
    return DynamoError("ValidationException", message)


def unsupported(what: str) -> DynamoError:
    return invalid(f"{what} is not supported by bench.fake_dynamodb")
