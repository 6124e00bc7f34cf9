"""What a run measures and how much of it: the figures' sizes and durations, the server command."""

from dataclasses import dataclass, field

from bench.processes import UVICORN_WS


@dataclass
class Config:
    """A full measurement by default; `quick_run` for a smoke run of about a minute."""

    quick: bool = False
    warmup_count: int = 200
    setup_seconds: float = 6.0
    setup_rounds: int = 3
    setup_concurrency: int = 50
    unloaded_seconds: float = 3.0
    echo_connections: int = 100
    echo_seconds: float = 10.0
    echo_warmup: float = 1.0
    hold_sizes: list[int] = field(default_factory=lambda: [1000, 10000])
    hold_concurrency: int = 100
    ping_connections: int = 100
    ping_scale: int = 30
    fake_latency_ms: float = 5.0
    server_cmd: str = "daphne"
    uvicorn_ws: str = UVICORN_WS
    deflate: bool = False
    settle_seconds: float = 2.0
    fresh_server_per_hold: bool = True

    @classmethod
    def quick_run(cls, **overrides) -> "Config":
        quick = {
            "quick": True,
            "warmup_count": 30,
            "setup_seconds": 1.5,
            "setup_rounds": 1,
            "setup_concurrency": 20,
            "unloaded_seconds": 0.5,
            "echo_connections": 20,
            "echo_seconds": 1.5,
            "echo_warmup": 0.5,
            "hold_sizes": [200],
            "hold_concurrency": 50,
            "ping_connections": 20,
            "ping_scale": 300,  # 12 s for the compressed hour
            "settle_seconds": 0.5,
            "fresh_server_per_hold": False,
        }
        return cls(**{**quick, **overrides})
