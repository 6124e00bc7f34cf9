"""deploy/Dockerfile and .dockerignore read as Docker reads them, for the tests that hold the
image to what CI runs: its instructions by stage, and the files a COPY takes into the image."""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.processes import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def stages(path: Path = DOCKERFILE) -> list[list[Instruction]]:
    """The Dockerfile's instructions, one list per stage (ARGs before the first FROM form a
    stage of their own, first)."""
    text = re.sub(r"\\\n", " ", path.read_text())  # line continuations
    result: list[list[Instruction]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            result.append([])
        result[-1].append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return result


def final_stage() -> list[Instruction]:
    return stages()[-1]


def arguments(stage: list[Instruction], keyword: str) -> list[str]:
    return [instruction.arguments for instruction in stage if instruction.keyword == keyword]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `relative` (a path in the build context) out: the last
    pattern that matches the path or one of its parent folders decides, `!` lets it in."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def _pattern_regex(pattern: str) -> re.Pattern:
    translated = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
        translated += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
            token, re.escape(token)
        )
    return re.compile(translated)


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def stage_image_tree(destination: Path) -> Path:
    """Copy what the final stage's COPY instructions take from the build context (after
    .dockerignore) to `destination`, laid out as in the image; returns the WORKDIR in it."""
    patterns = dockerignore_patterns()
    workdir = "/"
    for instruction in final_stage():
        if instruction.keyword == "WORKDIR":
            workdir = instruction.arguments
        if instruction.keyword != "COPY" or "--from=" in instruction.arguments:
            continue
        *sources, target = [
            word for word in instruction.arguments.split() if not word.startswith("--")
        ]
        target_path = destination / (Path(workdir) / target).relative_to("/")
        for source in sources:
            _copy(source.rstrip("/"), target_path, target.endswith("/"), patterns)
    return destination / Path(workdir).relative_to("/")


def _copy(source: str, target: Path, into_folder: bool, patterns: list[str]) -> None:
    origin = ROOT / source
    if origin.is_dir():
        for path in origin.rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and not ignored(relative, patterns):
                copied = target / path.relative_to(origin)
                copied.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copied)
    elif not ignored(source, patterns):
        copied = target / origin.name if into_folder else target
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, copied)
