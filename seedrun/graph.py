"""Turn a pipeline and a selection into a plan: which steps run and what each waits for.

Edges come from four places: ``needs`` and ``after``, pairs (the dependent
needs the main), sequential phases (each step needs the one listed before
it) and phase order (each phase waits for the phase before it). Phase order
is expressed through one barrier per phase instead of an edge from every
step of a phase to every step of the phase before, so a plan of thousands
of steps stays linear in size.
"""

from __future__ import annotations

import heapq
from collections import deque

from seedrun.errors import UsageError, under_make
from seedrun.pipeline import Pipeline, closest

BARRIER = "phase:"


class Selection:
    """The steps, phases, pairs and targets an operator selected to run."""

    # A plain class for the start-up time of every run, as in pipeline.py.
    def __init__(self, names: list[str] | None = None, phases: list[str] | None = None,
                 pairs: list[str] | None = None, targets: list[str] | None = None, with_needs: bool = False,
                 enable: list[str] | None = None) -> None:
        self.names = list(names or [])
        self.phases = list(phases or [])
        self.pairs = list(pairs or [])
        self.targets = list(targets or [])
        self.with_needs = with_needs
        self.enable = list(enable or [])

    def label(self) -> str:
        parts = list(self.names)
        parts += ["phase-" + p for p in self.phases]
        parts += ["pair-" + p for p in self.pairs]
        parts += ["target-" + t for t in self.targets]
        return " ".join(parts) if parts else "seed-all"


class PlannedStep:
    __slots__ = ("name", "phase", "needs", "after", "needs_phase", "after_phase")

    def __init__(self, name: str, phase: str | None, needs: list[str], after: list[str],
                 needs_phase: str | None = None, after_phase: str | None = None) -> None:
        self.name = name
        self.phase = phase
        self.needs = needs
        self.after = after
        self.needs_phase = needs_phase
        self.after_phase = after_phase


class Plan:
    def __init__(self, pipeline: Pipeline, selection: Selection, steps: list[PlannedStep],
                 barriers: dict[str, list[str]], notes: list[str] | None = None) -> None:
        self.pipeline = pipeline
        self.selection = selection
        self.steps = steps
        self.barriers = barriers
        self.notes = notes if notes is not None else []

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]


def _edges(pipeline: Pipeline) -> dict[str, list[str]]:
    """Return every step's prerequisites in the whole pipeline, with phase barriers as nodes."""
    edges: dict[str, list[str]] = {name: list(s.needs) + list(s.after) for name, s in pipeline.steps.items()}
    for pair in pipeline.pairs.values():
        edges.setdefault(pair.dependent, []).append(pair.main)
    previous = None
    for phase in pipeline.phases:
        edges[BARRIER + phase.name] = list(phase.steps)
        for position, name in enumerate(phase.steps):
            if phase.mode == "sequential" and position > 0:
                edges.setdefault(name, []).append(phase.steps[position - 1])
            if previous is not None:
                edges.setdefault(name, []).append(BARRIER + previous.name)
        previous = phase
    return edges


def find_cycles(pipeline: Pipeline) -> list[str]:
    """Return one cycle per strongly connected component, spelled "a -> b -> a"."""
    edges = _edges(pipeline)
    cycles = []
    for component in _strong_components(edges):
        members = set(component)
        start = min(component, key=lambda n: (n.startswith(BARRIER), _order(pipeline, n)))  # noqa: E501
        if len(component) == 1 and start not in edges.get(start, []):
            continue
        path = _cycle_through(start, edges, members)
        cycles.append(" -> ".join(n for n in path if not n.startswith(BARRIER)) + _via_phases(path, pipeline))
    return cycles


def _order(pipeline: Pipeline, node: str) -> int:
    step = pipeline.steps.get(node)
    return step.index if step else 0


def _via_phases(path: list[str], pipeline: Pipeline) -> str:
    barriers = [n[len(BARRIER):] for n in path if n.startswith(BARRIER)]
    if not barriers:
        return ""
    waits = []
    for name in barriers:
        later = [p.name for i, p in enumerate(pipeline.phases[1:], 1) if pipeline.phases[i - 1].name == name]
        waits.append("phase %s waits for phase %s" % (later[0], name) if later else "phase %s" % name)
    return " (%s)" % "; ".join(waits)


def _strong_components(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so deep chains do not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges.get(root, [])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _cycle_through(start: str, edges: dict[str, list[str]], members: set[str]) -> list[str]:
    """Shortest path from start back to start inside one component."""
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in edges.get(node, []):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [start] + path[::-1][1:] + [start] if node != start else [start, start]
            if child not in parents:
                parents[child] = node
                queue.append(child)
    return [start, start]


# Selection


def resolve(pipeline: Pipeline, selection: Selection, durations: dict[str, float] | None = None) -> Plan:
    """Resolve a selection into a plan in start order; raise UsageError for unknown names.

    `durations` maps step names to their expected seconds from earlier runs.
    With them, of the steps that are ready at the same time, the one with
    the longest path still ahead starts first (see _remaining_seconds).
    Without them, ready steps start in the order of the pipeline file.

    NOTE: make follows this order only among steps that become ready
    together. A step that becomes ready later waits behind those make
    already queued for a job slot.
    """
    _check_enable(pipeline, selection)
    chosen = _chosen_steps(pipeline, selection)
    if selection.with_needs:
        chosen = _with_prerequisites(pipeline, chosen, set(selection.enable))
    if not chosen:
        # make takes no --enable, but naming a disabled step or phase as a goal runs it.
        if under_make():
            fix = "run one by its name, as make STEP or make phase-NAME"
        else:
            fix = "enable one with --enable NAME"
        raise UsageError("the selection %r of %s contains no enabled step; %s"
                         % (selection.label(), pipeline.path, fix))
    notes: list[str] = []
    planned, barriers = _prerequisites(pipeline, chosen, notes)
    return Plan(pipeline, selection, _start_order(pipeline, planned, barriers, durations or {}), barriers, notes)


def _check_enable(pipeline: Pipeline, selection: Selection) -> None:
    known = list(pipeline.steps) + [p.name for p in pipeline.phases]
    for name in selection.enable:
        if name in known:
            continue
        for kind, table in (("target", pipeline.targets), ("pair", pipeline.pairs)):
            if name in table:
                # A selected target or pair runs its disabled steps without --enable.
                raise UsageError("--enable %r: %r is a %s of %s, but --enable takes a step or phase; select the %s "
                                 "with --%s %s, which runs its disabled steps too"
                                 % (name, name, kind, pipeline.path, kind, kind, name))
        disabled = [s.name for s in pipeline.steps.values() if not s.enabled]
        disabled += [p.name for p in pipeline.phases if not p.enabled]
        raise UsageError("--enable %r: no step or phase has that name in %s%s; disabled steps and phases: %s"
                         % (name, pipeline.path, closest(name, known), ", ".join(disabled) or "none"))


def _chosen_steps(pipeline: Pipeline, selection: Selection) -> set[str]:
    enabled = set(selection.enable)
    asked = selection.names or selection.phases or selection.pairs or selection.targets
    if not asked:
        return _everything(pipeline, enabled)
    chosen: set[str] = set()
    for name in selection.names:
        chosen |= _by_name(pipeline, name, enabled)
    for name in selection.phases:
        chosen |= _phase_steps(pipeline, name, enabled)
    for name in selection.pairs:
        pair = _lookup(pipeline.pairs, name, "pair", pipeline)
        chosen |= {pair.main, pair.dependent}
    for name in selection.targets:
        chosen |= set(_lookup(pipeline.targets, name, "target", pipeline))
    return chosen


def _everything(pipeline: Pipeline, enabled: set[str]) -> set[str]:
    if not pipeline.phases:
        return {name for name, s in pipeline.steps.items() if s.enabled or name in enabled}
    chosen = set()
    for phase in pipeline.phases:
        if phase.enabled or phase.name in enabled:
            chosen |= {s for s in phase.steps if pipeline.steps[s].enabled or s in enabled}
    chosen |= {name for name in enabled if name in pipeline.steps}
    return chosen


def _phase_steps(pipeline: Pipeline, name: str, enabled: set[str]) -> set[str]:
    """Return the steps of the phase that run when it is selected: its enabled steps and those in `enabled`."""
    return {s for s in _phase(pipeline, name).steps if pipeline.steps[s].enabled or s in enabled}


def _by_name(pipeline: Pipeline, name: str, enabled: set[str]) -> set[str]:
    """Resolve a step, a target, or make's pair-NAME and phase-NAME goals to step names."""
    if name in pipeline.steps:
        return {name}
    if name in pipeline.targets:
        return set(pipeline.targets[name])
    if name.startswith("pair-"):
        pair = _lookup(pipeline.pairs, name[len("pair-"):], "pair", pipeline)
        return {pair.main, pair.dependent}
    if name.startswith("phase-"):
        # make phase-NAME runs `seedrun run phase-NAME`, which selects what --phase NAME does.
        return _phase_steps(pipeline, name[len("phase-"):], enabled)
    choices = list(pipeline.steps) + list(pipeline.targets)
    choices += ["pair-" + p for p in pipeline.pairs] + ["phase-" + p.name for p in pipeline.phases]
    valid = [("steps", list(pipeline.steps)), ("targets", list(pipeline.targets)),
             ("pairs", ["pair-" + p for p in pipeline.pairs]), ("phases", ["phase-" + p.name for p in pipeline.phases])]
    raise UsageError("unknown step or target %r in %s%s%s" % (
        name, pipeline.path, closest(name, choices),
        "".join("\nvalid %s: %s" % (kind, ", ".join(names)) for kind, names in valid if names)))


def _phase(pipeline: Pipeline, name: str):
    for phase in pipeline.phases:
        if phase.name == name:
            return phase
    names = [p.name for p in pipeline.phases]
    raise UsageError("unknown phase %r in %s%s; valid phases: %s"
                     % (name, pipeline.path, closest(name, names), ", ".join(names) or "none"))


def _lookup(table: dict, name: str, kind: str, pipeline: Pipeline):
    if name not in table:
        raise UsageError("unknown %s %r in %s%s; valid %ss: %s"
                         % (kind, name, pipeline.path, closest(name, table), kind, ", ".join(table) or "none"))
    return table[name]


def _with_prerequisites(pipeline: Pipeline, chosen: set[str], enabled: set[str]) -> set[str]:
    """Add what the chosen steps wait for, directly or not, except disabled steps and phases that are not enabled.

    The search goes on through a disabled step, so that what it waits for
    still runs first, as it does when a selected step needs a disabled one.
    """
    edges = _edges(pipeline)
    seen = set(chosen)
    queue = deque(chosen)
    while queue:
        for child in edges.get(queue.popleft(), []):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return {name for name in seen if name in chosen or (
        not name.startswith(BARRIER) and _is_enabled(pipeline, name, enabled))}


def _is_enabled(pipeline: Pipeline, name: str, enabled: set[str]) -> bool:
    """Return whether the step counts as enabled: it and its phase, if any, are enabled or named by --enable."""
    if name in enabled:
        return True
    if not pipeline.steps[name].enabled:
        return False
    phase = pipeline.phase_of(name)
    return phase is None or phase.enabled or phase.name in enabled


def _direct_waits(pipeline: Pipeline, name: str) -> list[tuple[str, bool]]:
    """A step's own prerequisites as (name, must_succeed), its pair's main included."""
    step = pipeline.steps[name]
    waits = [(n, True) for n in step.needs] + [(n, False) for n in step.after]
    waits += [(main, True) for main in pipeline.pair_mains(name)]
    return waits


def _through_disabled(pipeline: Pipeline, start: str, chosen: set[str], must_succeed: bool) -> list[tuple[str, bool]]:
    """Return the chosen steps a disabled step waits for, directly or through other disabled steps.

    A step that needs a disabled step keeps the order that step had: it waits
    for what the disabled step would have waited for. An edge stays "must
    succeed" only if every hop on the way is a need, the first hop to `start`
    (given by `must_succeed`) included.
    """
    found: list[tuple[str, bool]] = []
    stack = [(start, must_succeed)]
    seen: set[str] = set()
    while stack:
        node, strict = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for other, must_succeed in _direct_waits(pipeline, node):
            if other in chosen:
                found.append((other, strict and must_succeed))
            elif not pipeline.steps[other].enabled:
                stack.append((other, strict and must_succeed))
    return found


def _prerequisites(pipeline: Pipeline, chosen: set[str],
                   notes: list[str]) -> tuple[dict[str, PlannedStep], dict[str, list[str]]]:
    planned = {}
    # What each disabled step waits for, walked once: many steps may need the end of a long disabled chain.
    walks: dict[tuple[str, bool], list[tuple[str, bool]]] = {}
    for name in sorted(chosen, key=lambda n: pipeline.steps[n].index):
        phase = pipeline.phase_of(name)
        step = planned[name] = PlannedStep(name, phase.name if phase else None, [], [])
        for other, must_succeed in _direct_waits(pipeline, name):
            waits = [(other, must_succeed)]
            if other not in chosen and not pipeline.steps[other].enabled:
                verb = "needs" if must_succeed else "runs after"
                notes.append("%s %s %s, which is disabled: %s runs without it, after what %s waits for"
                             % (name, verb, other, name, other))
                if (other, must_succeed) not in walks:
                    walks[other, must_succeed] = _through_disabled(pipeline, other, chosen, must_succeed)
                waits = walks[other, must_succeed]
            for wait, strict in waits:
                target = step.needs if strict else step.after
                if wait in chosen and wait not in step.needs + step.after:
                    target.append(wait)
    return planned, _phase_edges(pipeline, chosen, planned)


def _phase_edges(pipeline: Pipeline, chosen: set[str], planned: dict[str, PlannedStep]) -> dict[str, list[str]]:
    """Add sequential-phase edges and phase barriers between the chosen steps.

    In a sequential phase only the first step waits for the barrier; the rest
    wait for it through the step listed before them.
    """
    barriers: dict[str, list[str]] = {}
    previous = None
    for phase in pipeline.phases:
        members = [s for s in phase.steps if s in chosen]
        if not members:
            continue
        for position, name in enumerate(members):
            if phase.mode == "sequential" and position > 0 and members[position - 1] not in planned[name].needs:
                planned[name].needs.append(members[position - 1])
            if previous is not None and (phase.mode == "parallel" or position == 0):
                if phase.wait == "finished":
                    planned[name].after_phase = previous
                else:
                    planned[name].needs_phase = previous
        barriers[phase.name] = members
        previous = phase.name
    used = {s.needs_phase for s in planned.values()} | {s.after_phase for s in planned.values()}
    return {name: members for name, members in barriers.items() if name in used}


def _start_order(pipeline: Pipeline, planned: dict[str, PlannedStep], barriers: dict[str, list[str]],
                 durations: dict[str, float]) -> list[PlannedStep]:
    """Kahn's algorithm, ties broken by phase, then by expected remaining seconds, then by the pipeline file."""
    waits: dict[str, set[str]] = {}
    for name, step in planned.items():
        waits[name] = set(step.needs) | set(step.after)
        for phase in (step.needs_phase, step.after_phase):
            if phase:
                waits[name] |= {BARRIER + phase}
    for phase, members in barriers.items():
        waits[BARRIER + phase] = set(members)
    users: dict[str, list[str]] = {}
    for name, prerequisites in waits.items():
        for prerequisite in prerequisites:
            users.setdefault(prerequisite, []).append(name)
    rank = _ranker(pipeline, _remaining_seconds(waits, users, durations))
    ready = [(rank(n), n) for n, w in waits.items() if not w]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        if not name.startswith(BARRIER):
            order.append(planned[name])
        for user in users.get(name, []):
            waits[user].discard(name)
            if not waits[user]:
                heapq.heappush(ready, (rank(user), user))
    return order


def _remaining_seconds(waits: dict[str, set[str]], users: dict[str, list[str]],
                       durations: dict[str, float]) -> dict[str, float]:
    """Return, for each node, the expected seconds from its start to the end of the longest path through it.

    This is the usual priority of list scheduling: when slots are scarce,
    starting the step with the most work behind it first keeps the
    critical path moving. A step with no recorded duration counts as the
    median of those that have one. Without any durations every node gets 0,
    which leaves the pipeline file's order alone.
    """
    known = [seconds for name, seconds in durations.items() if name in waits]
    if not known:
        return {}
    # Here, not at the top: only a run with history needs it.
    from statistics import median

    guess = median(known)
    remaining: dict[str, float] = {}
    pending = {name: len(users.get(name, [])) for name in waits}
    ready = [name for name, count in pending.items() if count == 0]
    while ready:
        name = ready.pop()
        own = 0.0 if name.startswith(BARRIER) else durations.get(name, guess)
        remaining[name] = own + max((remaining[user] for user in users.get(name, [])), default=0.0)
        for prerequisite in waits[name]:
            pending[prerequisite] -= 1
            if pending[prerequisite] == 0:
                ready.append(prerequisite)
    return remaining


def _ranker(pipeline: Pipeline, remaining: dict[str, float]):
    """Return a sort key that orders ready steps by phase, then longest remaining path, then pipeline file order."""
    position = {id(phase): i for i, phase in enumerate(pipeline.phases)}
    phase_of = {name: position[id(phase)] for name, phase in pipeline.phase_index().items()}
    last = len(pipeline.phases)

    def rank(node: str) -> tuple[int, int, int]:
        if node.startswith(BARRIER):
            return (-1, 0, 0)
        # In tenths of a second, so that the jitter of very short steps leaves them in file order.
        return (phase_of.get(node, last), -round(remaining.get(node, 0.0) * 10), pipeline.steps[node].index)

    return rank
