"""Fuzzing scenario files: seeded mutations of the shipped scenarios, and a runner that
feeds them to ``negotiate scenarios validate`` and ``negotiate run`` in one process.

The runner is its own process (``python -m tests.fuzz_support FOLDER``) so that its peak
memory can be measured alone; it prints one JSON object: every command's exit code, whether
a traceback escaped, how long it took, and the peak RSS of the whole batch.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from negotiation.scenario import shipped_scenarios

#: Seconds one command may take before it counts as a hang.
COMMAND_TIMEOUT = 20

Mutation = Callable[[random.Random, Any], Any]


def _nodes(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path below ``data`` (mapping keys and list indices)."""
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _nodes(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _nodes(value, (*path, index))
    return found


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


def _pick(rng: random.Random, data: Any, wanted: Callable[[Any], bool]) -> tuple[Any, ...] | None:
    def value_at(path: tuple[Any, ...]) -> Any:
        node = data
        for part in path:
            node = node[part]
        return node

    paths = [path for path in _nodes(data) if path and wanted(value_at(path))]
    return rng.choice(paths) if paths else None


def _set_some(wanted: Callable[[Any], bool], values: Callable[[random.Random], Any]) -> Mutation:
    def mutate(rng: random.Random, data: Any) -> Any:
        path = _pick(rng, data, wanted)
        return data if path is None else _replace(data, path, values(rng))
    return mutate


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _deep(rng: random.Random) -> Any:
    depth = rng.choice([10, 31, 33, 100])  # deeper: see _deep_text
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


UNICODE = ["\u202eevil\u202c", "🤝" * 50, "e\u0301\u0301\u0301", "\x1b[2J\x1b]0;title\x07",
           "[bold]x[/]", "[/]", "名前と値", "Ω" * 1000, "\ud7ff\ue000", "<script>x</script>"]

DATA_MUTATIONS: list[Mutation] = [
    _set_some(lambda _: True, lambda rng: rng.choice(
        [None, True, False, 0, -1, 1.5, "text", [], {}, [1, "a"], {"x": 1}, "", "0"])),
    _set_some(lambda _: True, lambda rng: rng.choice(
        [float("nan"), float("inf"), float("-inf"), "nan", "inf", "-Infinity", "1e999"])),
    _set_some(_is_number, lambda rng: rng.choice(
        [10**30, -10**30, 1e308, -1e308, 2**53 + 1, 1e-308, 5e-324, 10**18, 10**6, 0.001])),
    _set_some(lambda value: isinstance(value, list), lambda _: []),
    _set_some(lambda value: isinstance(value, str), lambda rng: rng.choice(UNICODE)),
    _set_some(lambda _: True, _deep),
    _set_some(lambda value: isinstance(value, str),
              lambda rng: "x" * rng.choice([10**4, 10**5, 10**6])),
    _set_some(lambda value: isinstance(value, dict), lambda rng: {}),
]


def _drop_or_add_key(rng: random.Random, data: Any) -> Any:
    path = _pick(rng, data, lambda value: isinstance(value, dict) and bool(value))
    if path is None:
        return data
    parent = data
    for part in path:
        parent = parent[part]
    if rng.random() < 0.5:
        del parent[rng.choice(list(parent))]
    else:
        parent[rng.choice(["extra", "Id", "weights", "kind", "ümlaut"])] = 1
    return data


DATA_MUTATIONS.append(_drop_or_add_key)

BOMB = ("lol0: &l0 [a, a, a, a, a, a, a, a, a]\n"
        + "".join(f"lol{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]\n" for k in range(1, 9)))
TAGS = ["!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system ''",
        "!!binary aGk=", "!custom value", "!!set {a, b}", "!!omap [a: 1]"]


def _text_lines(rng: random.Random, text: str) -> tuple[list[str], int]:
    lines = text.splitlines()
    candidates = [k for k, line in enumerate(lines) if ": " in line and not line.endswith(":")]
    return lines, rng.choice(candidates)


def _alias_bomb(rng: random.Random, text: str) -> str:
    if rng.random() < 0.5:
        return text + BOMB
    lines, k = _text_lines(rng, text)
    key = lines[k].split(": ", 1)[0]
    lines[k] = f"{key}: &x {lines[k].split(': ', 1)[1]}"
    lines.append("alias_user: [*x, *x, *x]")
    return "\n".join(lines) + "\n"


def _duplicate_key(rng: random.Random, text: str) -> str:
    lines, k = _text_lines(rng, text)
    lines.insert(k + 1, lines[k])
    return "\n".join(lines) + "\n"


def _tag(rng: random.Random, text: str) -> str:
    lines, k = _text_lines(rng, text)
    key = lines[k].split(": ", 1)[0]
    lines[k] = f"{key}: {rng.choice(TAGS)}"
    return "\n".join(lines) + "\n"


def _deep_text(rng: random.Random, text: str) -> str:
    depth = rng.choice([40, 999, 5000])
    return text + "deep: " + "[" * depth + "]" * depth + "\n"


def _huge_file(rng: random.Random, text: str) -> str:
    return text.replace("description:", "description: " + "y" * (10 * 1024 * 1024) + " ", 1)


TEXT_MUTATIONS: list[Callable[[random.Random, str], str]] = [
    _alias_bomb, _duplicate_key, _tag, _deep_text]


def write_mutants(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` mutated copies of the shipped scenarios, the same for the same seed."""
    rng = random.Random(seed)
    bases = [(path.stem, path.read_text(encoding="utf-8")) for path in shipped_scenarios()]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number in range(count):
        stem, text = rng.choice(bases)
        if number % 200 == 199:  # a few 10 MB files: enough to prove the limit, quick to write
            text = _huge_file(rng, text)
        elif rng.random() < 0.3:
            text = rng.choice(TEXT_MUTATIONS)(rng, text)
        else:
            data = yaml.safe_load(text)
            for _ in range(rng.choice([1, 1, 2, 3])):
                data = rng.choice(DATA_MUTATIONS)(rng, data)
            text = yaml.dump(data, Dumper=_DUMPER, allow_unicode=True, sort_keys=False)
        path = folder / f"{number:04d}-{stem}.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        written.append(path)
    return written


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang


def run_all(folder: Path) -> dict[str, Any]:
    """Every file through ``validate`` and ``run``, in this process."""
    from typer.testing import CliRunner

    from negotiation.cli import app
    from tests.cli_speed import build_each_app_once

    build_each_app_once()

    signal.signal(signal.SIGALRM, _alarm)
    runner = CliRunner()
    results = []
    out = folder / "transcripts"
    for path in sorted(folder.glob("*.yaml")):
        for command in (["scenarios", "validate", str(path)],
                        ["run", str(path), "--rounds", "5", "--driver", "plain", "-q",
                         "--out", str(out)]):
            started = time.perf_counter()
            signal.alarm(COMMAND_TIMEOUT)
            try:
                done = runner.invoke(app, command, env={"COLUMNS": "200", "NO_COLOR": "1"})
                hang = isinstance(done.exception, _Hang)
            except _Hang:
                hang, done = True, None
            finally:
                signal.alarm(0)
            output = "" if done is None else done.stdout + done.stderr
            escaped = done is not None and done.exception is not None \
                and not isinstance(done.exception, SystemExit | _Hang)
            results.append({
                "file": path.name, "command": command[0] if command[0] == "run" else "validate",
                "code": None if done is None else done.exit_code, "hang": hang,
                "traceback": escaped or "Traceback" in output,
                "error": repr(done.exception) if escaped and done is not None else "",
                "seconds": round(time.perf_counter() - started, 3),
                "output": output[-300:],
            })
    max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"results": results, "max_rss_kib": max_rss_kib}


if __name__ == "__main__":
    print(json.dumps(run_all(Path(sys.argv[1]))))
