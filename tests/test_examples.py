"""The bundled examples: the npm project run for real, and the dependency-only plan."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from support import REPO, Workspace, parse_time

NPM_EXAMPLE = REPO / "examples" / "npm"
DAG_EXAMPLE = REPO / "examples" / "dag.toml"

NPM_RUN = re.compile(r"npm run (\S+)\Z")
UPSERTED = re.compile(r"Upserted (\d+) products")
PLAN_LINE = re.compile(r"\s*\d+\.\s+(\S+)\s+\[(\S+)\]\s+(.+?)\s*\Z")

CODE_FIX = "seed-keystone-ftp-codes"
PAIRS = {
    "seed-quadratec": "seed-quad-inventory",
    "seed-omix": "seed-omix-inventory",
    "seed-wheelPros": "seed-wp-inventory",
    "seed-keystone-ftp2": "seed-keystone-ftp-codes-pair",
}
VENDORS = ("seed-roughCountry", "seed-tireDiscounter", "seed-aev", "seed-ctp", "seed-keyparts",
           "seed-alpine", "seed-meyer", "seed-tdot", "seed-lowriders", "seed-turn14-production")
DEFAULT_RUN = ("seed-allProducts", CODE_FIX, *[step for pair in PAIRS.items() for step in pair], *VENDORS)

needs_npm = pytest.mark.skipif(shutil.which("npm") is None,
                               reason="npm is not on PATH; the npm example runs its scripts with npm run")


def copy_npm_example(ws: Workspace) -> Path:
    """Copy examples/npm into the workspace so run logs stay out of the repository."""
    shutil.copytree(NPM_EXAMPLE, ws.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("logs", "reports", "node_modules"))
    ws.env.pop("EXAMPLE_FAIL", None)
    # npm's update check would query the registry; the example's [defaults] env turns it off for every step.
    ws.env.pop("NPM_CONFIG_UPDATE_NOTIFIER", None)
    pipeline_file = ws.path / "pipeline.toml"
    assert tomllib.loads(pipeline_file.read_text())["defaults"]["env"] == {"NPM_CONFIG_UPDATE_NOTIFIER": "false"}
    return pipeline_file


def npm_scripts(pipeline_file: Path) -> dict[str, str]:
    """Map each step of a pipeline file to the npm script its command runs."""
    steps = tomllib.loads(pipeline_file.read_text())["steps"]
    return {name: NPM_RUN.match(table["command"]).group(1) for name, table in steps.items()}


@needs_npm
def test_npm_example_runs_every_step(ws):
    pipeline_file = copy_npm_example(ws)
    scripts = npm_scripts(pipeline_file)

    result = ws.run("--pipeline", str(pipeline_file), "run")

    assert result.code == 0, result.out + result.err
    steps = ws.steps()
    assert sorted(steps) == sorted(DEFAULT_RUN)
    for name, step in steps.items():
        assert step["status"] == "succeeded", name
        log = ws.log(name)
        assert "%s: reading " % scripts[name] in log, "%s log lacks the script's progress line:\n%s" % (name, log)
        upserted = UPSERTED.findall(log)
        assert upserted, "%s log lacks the summary line:\n%s" % (name, log)
        assert step["metrics"] == {"products": int(upserted[-1])}, name

    def started(name: str) -> float:
        return parse_time(steps[name]["started_at"])

    def finished(name: str) -> float:
        return parse_time(steps[name]["finished_at"])

    for main, dependent in PAIRS.items():
        assert finished(main) <= started(dependent), "%s started before %s finished" % (dependent, main)
    assert finished("seed-allProducts") <= started(CODE_FIX)
    for name in [*PAIRS, *PAIRS.values(), *VENDORS]:
        assert finished(CODE_FIX) <= started(name), "%s started before the code fix finished" % name
    for vendor in VENDORS:
        assert finished("seed-keystone-ftp-codes-pair") <= started(vendor), "%s started before phase pairs ended" % vendor


@needs_npm
def test_npm_example_failure_skips_dependent(ws):
    pipeline_file = copy_npm_example(ws)

    result = ws.run("--pipeline", str(pipeline_file), "run", env=dict(ws.env, EXAMPLE_FAIL="seed-quadratec"))

    assert result.code == 1, result.out + result.err
    steps = ws.steps()
    assert steps["seed-allProducts"]["status"] == "succeeded"
    assert steps[CODE_FIX]["status"] == "succeeded"
    assert steps["seed-quadratec"]["status"] == "failed"
    assert steps["seed-quadratec"]["exit_code"] == 1
    assert "seed-quadratec: failing on purpose (EXAMPLE_FAIL)" in ws.log("seed-quadratec")
    assert steps["seed-quad-inventory"]["status"] == "skipped"
    assert steps["seed-quad-inventory"]["blocked_by"] == "seed-quadratec"
    # Phase pairs is sequential and phase vendors waits for it, so the failure
    # skips every later pair step and every vendor as well.
    for name in [*list(PAIRS)[1:], *list(PAIRS.values())[1:], *VENDORS]:
        assert steps[name]["status"] == "skipped", name
        assert steps[name]["blocked_by"] == "seed-quadratec", name


def test_dag_example_plan_waits_only_for_code_fix(ws):
    result = ws.run("--pipeline", str(DAG_EXAMPLE), "plan")

    assert result.code == 0, result.out + result.err
    waits = {}
    for line in result.lines[1:]:
        match = PLAN_LINE.match(line)
        assert match, "unexpected plan line: %r" % line
        name, phase, text = match.groups()
        assert phase == "sync", line
        waits[name] = text
    assert sorted(waits) == sorted(DEFAULT_RUN)
    assert waits["seed-allProducts"] == "starts at once"
    assert waits[CODE_FIX] == "needs seed-allProducts"
    for name in [*PAIRS, *VENDORS]:
        assert waits[name] == "needs " + CODE_FIX, name
    for main, dependent in PAIRS.items():
        assert waits[dependent] == "needs " + main, dependent
