"""Read the Dockerfile's instructions (stages, ENV, COPY) so tests derive facts from it."""

from __future__ import annotations

import json
import re

from tests.deploy.chart import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


INSTRUCTIONS = instructions(DOCKERFILE.read_text())


def stage_instructions(stage: str) -> list[tuple[str, str]]:
    """The instructions of one build stage (FROM ... AS stage up to the next FROM)."""
    out, inside = [], False
    for keyword, args in INSTRUCTIONS:
        if keyword == "FROM":
            inside = args.split()[-1] == stage
            continue
        if inside:
            out.append((keyword, args))
    return out


def stage_parents(stage: str) -> list[str]:
    """The stage and the stages it builds on (FROM <stage>), nearest first."""
    froms = {args.split()[-1]: args.split()[0] for keyword, args in INSTRUCTIONS if keyword == "FROM"}
    chain = [stage]
    while froms.get(chain[-1]) in froms:
        chain.append(froms[chain[-1]])
    return chain


def image_env(stage: str = "runtime") -> dict[str, str]:
    """ENV of the image built from ``stage``, inherited ENV of its parent stages included."""
    env: dict[str, str] = {}
    for name in reversed(stage_parents(stage)):
        for keyword, args in stage_instructions(name):
            if keyword == "ENV":
                env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return {key: value for key, value in env.items() if "$" not in value}


def json_args(stage: str, keyword: str) -> list[str]:
    (args,) = [a for k, a in stage_instructions(stage) if k == keyword]
    return json.loads(args)


def copies(stage: str = "runtime") -> list[tuple[str, str]]:
    """(source, destination) of the stage's COPY lines from the build context."""
    out = []
    for keyword, args in stage_instructions(stage):
        if keyword == "COPY" and "--from=" not in args:
            *sources, destination = args.split()
            out += [(source, destination) for source in sources]
    return out


def workdir(stage: str = "runtime") -> str:
    return [args for keyword, args in stage_instructions(stage) if keyword == "WORKDIR"][-1]
