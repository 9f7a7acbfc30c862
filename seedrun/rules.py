"""Write the make rules of a run: one rule per step, one per phase barrier.

Every prerequisite is order-only (after ``|``), so make decides what to run
by whether a step's ``.done`` stamp exists, never by comparing timestamps.
That is what lets ``seedrun resume`` delete the stamps of the steps that did
not succeed and run make again on the same rules: a step that succeeded is
never run again because something it waited for ran later.

Recipes name steps only through validated names and read commands from the
run's spec file, so no command text ever reaches make or a shell here.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from seedrun import launcher
from seedrun.graph import Plan

STEP_SCRIPT = Path(__file__).resolve().parent / "step.py"
STAMPS = ".seedrun/stamps"
SHELL_BARRIER_LIMIT = 64 * 1024


def _make_quote(text: str) -> str:
    """Quote for the shell, then escape make's own '$'."""
    return shlex.quote(text).replace("$", "$$")


# Imported as a module, not run as a script, so that Python reuses the cached
# bytecode of step.py instead of compiling it for every step.
STEP_RUNNER_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); "
                 "from seedrun.step import main; sys.exit(main(sys.argv[2:]))")


# Shell builtins only: open the reply FIFO (read-write, which on Linux never
# waits), send "PID REPLY ARGS" to the launcher, wait for the exit code.
LAUNCHER_REQUEST = ("exec 3<>.seedrun/%s/$(1); echo \"$$$$ $(1) $(2)\" >.seedrun/%s; "
                    "read -r code <&3; exit $${code:-1}" % (launcher.REPLIES, launcher.QUEUE))


def step_command(run_dir: Path) -> str:
    """Return the recipe prefix: an absolute interpreter, no site import, isolated mode."""
    return "%s -I -S -c %s %s %s" % (_make_quote(sys.executable), _make_quote(STEP_RUNNER_CODE),
                                     _make_quote(str(STEP_SCRIPT.parent.parent)), _make_quote(str(run_dir)))


def render_rules(plan: Plan, run_dir: Path) -> str:
    lines = [
        "# make rules of seedrun run %s; generated, do not edit." % run_dir.name,
        "# Stamps: %s/NAME.done when a step finished, NAME.ok when it succeeded." % STAMPS,
        "SHELL := /bin/sh",
        ".SUFFIXES:",
        "STEP := %s" % step_command(run_dir),
        "S := %s" % STAMPS,
        "# RUN(REPLY,ARGS) starts the step runner with ARGS. seedrun sets SEEDRUN_LAUNCHER on",
        "# make's command line and serves the request in its launcher (see launcher.py);",
        "# a make started without it runs a fresh step runner per recipe instead.",
        "ifdef SEEDRUN_LAUNCHER",
        "RUN = %s" % LAUNCHER_REQUEST,
        "else",
        "RUN = $(STEP) $(2)",
        "endif",
        "",
        ".PHONY: all",
        "all: | " + " ".join("$(S)/%s.done" % s.name for s in plan.steps),
        "# An interrupted make deletes the target of a recipe if it changed, but a step's stamp",
        "# is written just before its recipe exits and must stay, or resume would run the step again.",
        ".PRECIOUS: " + " ".join(["$(S)/%s.done" % s.name for s in plan.steps]
                                 + ["$(S)/phase.%s.done" % phase for phase in plan.barriers]),
        "",
    ]
    for step in plan.steps:
        waits = ["$(S)/%s.done" % name for name in step.needs + step.after]
        for phase in (step.needs_phase, step.after_phase):
            if phase:
                waits.append("$(S)/phase.%s.done" % phase)
        lines.append("$(S)/%s.done: | %s" % (step.name, " ".join(waits)))
        lines.append("\t@$(call RUN,%s,%s)" % (step.name, step.name))
    for phase, members in plan.barriers.items():
        lines.append("$(S)/phase.%s.done: | %s" % (phase, " ".join("$(S)/%s.done" % m for m in members)))
        lines.append("\t@" + barrier_recipe(phase, members))
    return "\n".join(lines) + "\n"


def barrier_recipe(phase: str, members: list[str]) -> str:
    """Stamp phase.NAME.ok when every member succeeded, then phase.NAME.done.

    A shell loop costs a fraction of a Python start, and barriers sit on the
    critical path. A phase too large for one shell argument (Linux caps one
    at 128 KiB) uses the step runner's barrier mode instead.
    """
    if sum(len(m) + 1 for m in members) > SHELL_BARRIER_LIMIT:
        return "$(call RUN,phase.%s,--phase %s)" % (phase, phase)
    return ("ok=1; for s in %s; do test -f $(S)/$$s.ok || ok=; done; "
            "if test -n \"$$ok\"; then : > $(S)/phase.%s.ok; fi; : > $(S)/phase.%s.done"
            % (" ".join(members), phase, phase))
