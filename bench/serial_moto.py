"""moto's server, answering one request at a time: `python -m bench.serial_moto -p PORT`.

DynamoDB applies each conditional write and each transaction atomically. moto does not lock
while it applies them, so under concurrent requests two "atomic" increments can both read the
same counter: races that DynamoDB settles would pass or fail by chance. Serialising requests
gives the tests DynamoDB's atomicity (and costs little: moto is bound by one core anyway).
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple


class OneAtATime:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))  # the whole answer, under the lock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args()
    run_simple(
        args.host,
        args.port,
        OneAtATime(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
