"""The command line: serve the endpoint until SIGTERM or SIGINT, or --measure one."""

import argparse
import asyncio

from bench import fake_dynamodb
from bench.fake_dynamodb.measure import measure
from bench.fake_dynamodb.server import serve


def announce(host: str):
    """The line that tells whoever started the endpoint where it listens, worded like moto's."""

    def ready(port: int) -> None:
        print(f"Running on http://{host}:{port}", flush=True)

    return ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fake_dynamodb",
        description=fake_dynamodb.__doc__.splitlines()[0],
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument(
        "--measure", action="store_true", help="start an endpoint and measure its throughput"
    )
    parser.add_argument("--connections", type=int, default=200, help="with --measure")
    parser.add_argument("--seconds", type=float, default=5.0, help="with --measure")
    parser.add_argument("--client", choices=("raw", "boto3"), default="raw", help="with --measure")
    args = parser.parse_args(argv)
    if args.measure:
        measure(args)
        return
    asyncio.run(serve(args.host, args.port, args.latency_ms, ready=announce(args.host)))


if __name__ == "__main__":
    main()
