# Entry points of seedrun; `make help` lists them.
# The first use creates .venv (Python 3.11 or newer) and installs seedrun into it.

ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3
VENV ?= $(ROOT).venv
BIN := $(abspath $(VENV))/bin
SEEDRUN := $(BIN)/seedrun
PIPELINE ?=
JOBS ?=

# A value as one shell word, whatever it contains: 'it'\''s' for it's.
# $(value ...) keeps a '$' in PIPELINE, JOBS, KEEP or RUN_ID from being
# expanded by make, and so does unexport: make expands a command-line
# variable to put it into the environment of every recipe.
quote = '$(subst ','\'',$(1))'
unexport PIPELINE JOBS
GLOBAL_ARGS := $(if $(value PIPELINE),--pipeline $(call quote,$(value PIPELINE)))
JOB_ARGS := $(if $(value JOBS),--jobs $(call quote,$(value JOBS)))
# `make -j4 seed-all` runs up to 4 steps at once, as JOBS=4 does, and
# `make -j4 plan` shows that limit. JOBS=N on make's command line wins over
# -jN, and -jN over a JOBS exported by the shell. make puts -jN into
# MAKEFLAGS only once recipes run, so this is expanded in a recipe. A bare
# -j (no limit) changes nothing.
MAKE_JOBS = $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS)))
RUN_JOB_ARGS = $(if $(and $(MAKE_JOBS),$(filter-out command line,$(origin JOBS))),--jobs $(MAKE_JOBS),$(JOB_ARGS))
# `make resume REPLAN=1 RUN_ID=ID` runs `seedrun resume --replan ID`, and
# `make plan resume` with the same variables explains that resume.
# Only from make's command line: RUN_ID is a common name for other tools' variables, so an
# exported one neither picks the run to resume nor goes missing from the steps' environment.
ifeq ($(origin RUN_ID),command line)
  unexport RUN_ID
  RUN_ID_ARGS := $(if $(value RUN_ID),$(call quote,$(value RUN_ID)))
endif
# make clean KEEP=N keeps N runs, and without KEEP the pipeline's keep_runs.
# Only from make's command line too: an exported KEEP must not decide how
# many runs make clean deletes, nor go missing from the steps' environment.
ifeq ($(origin KEEP),command line)
  unexport KEEP
  KEEP_ARGS := $(if $(value KEEP),--keep $(call quote,$(value KEEP)))
endif
ifeq ($(origin REPLAN),command line)
  unexport REPLAN
  REPLAN_VALUE := $(value REPLAN)
endif
REPLAN_ARGS := $(if $(REPLAN_VALUE),--replan)
ifneq ($(filter resume,$(MAKECMDGOALS)),)
  ifneq ($(REPLAN_VALUE),)
    ifneq ($(REPLAN_VALUE),1)
      $(error invalid REPLAN value '$(REPLAN_VALUE)': use REPLAN=1 to resume with the pipeline file as it is now, or leave REPLAN out to resume with the run's own plan)
    endif
  endif
endif

COMMANDS := help venv seed-all resume plan graph validate report clean test test-deps bench
# Each name once, in the order given: a repeated goal would get both the run's recipe and the
# ':' of the goals after the first, and make would keep only the ':' and run nothing.
unique = $(if $(1),$(firstword $(1)) $(call unique,$(filter-out $(firstword $(1)),$(1))))
SELECTION := $(strip $(call unique,$(filter-out $(COMMANDS),$(MAKECMDGOALS))))
SELECTION_ARGS := $(foreach name,$(SELECTION),$(call quote,$(name)))
# `make plan pair-omix` and `make graph seed-tdot` preview a selection: with
# plan or graph among the goals, nothing runs.
PREVIEW_GOALS := $(filter plan graph,$(MAKECMDGOALS))
RUN_GOALS := $(if $(PREVIEW_GOALS),,$(filter seed-all resume,$(MAKECMDGOALS))$(SELECTION))
# Each run goal starts a run of its own, so `make seed-all seed-meyer` would run seed-meyer twice.
ifeq ($(PREVIEW_GOALS),)
  ifneq ($(and $(filter seed-all,$(MAKECMDGOALS)),$(filter resume,$(MAKECMDGOALS))),)
    $(error make seed-all and make resume each start a run; run them one at a time)
  endif
  ifneq ($(and $(filter seed-all resume,$(MAKECMDGOALS)),$(SELECTION)),)
    $(error make $(firstword $(filter seed-all resume,$(MAKECMDGOALS))) takes no step, target, pair or phase names ($(SELECTION)); run make $(SELECTION) on its own)
  endif
endif
SEEDRUN_GOALS := $(RUN_GOALS)$(filter plan graph validate report clean,$(MAKECMDGOALS))

# An editable install whose .pth file holds only the path of this folder.
# setuptools' default editable mode installs an import hook instead, which
# imports pathlib, re and importlib.util at every start of the virtualenv's
# Python: about 15 ms, and about 3 ms for seedrun, which needs most of them.
# The modules at the top of this folder (tasks, bench) become importable in
# the virtualenv too.
INSTALL = $(call quote,$(BIN)/pip) install --quiet --disable-pip-version-check --config-settings editable_mode=compat -e
BOOTSTRAP = $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	|| { echo "seedrun needs Python 3.11 or newer: run make PYTHON=python3.11 ..." >&2; exit 2; }; \
	$(PYTHON) -m venv $(call quote,$(VENV)) && $(INSTALL) $(call quote,$(ROOT))

# A goal that runs seedrun creates the virtualenv while the Makefile is read,
# so that the pipeline file can be validated before any recipe starts.
ifneq ($(SEEDRUN_GOALS),)
  ifeq ($(wildcard $(SEEDRUN)),)
    $(info Creating $(VENV) and installing seedrun into it (first use only))
    ifneq ($(shell $(BOOTSTRAP) 1>&2; echo $$?),0)
      $(error could not create $(VENV); see the messages above)
    endif
  endif
endif

# make -n (--dry-run, --just-print) prints the command a run goal would run
# and runs nothing. MAKEFLAGS starts with the single-letter options, or with
# a space when there are none.
DRY_RUN := $(findstring n,$(firstword -$(MAKEFLAGS)))
# The same for the check below, which runs while make reads this file.
MAKE_HINTS := SEEDRUN_REPLAN_ARGUMENT=REPLAN=1

# make exits 2 whenever a recipe fails, but operators and cron need seedrun's
# own exit codes: 1 when a step failed, 2 when the pipeline file or the
# selection is invalid. So the pipeline and the selection are checked here
# (an invalid one stops make with exit 2 and runs nothing), and the run goals
# execute in question mode (-q), where make exits 1 when the run failed.
# Their recipes start with '+', which question mode still runs, except under
# make -n, which would run them too.
RUN_RECIPE := $(if $(DRY_RUN),,+)
ifneq ($(RUN_GOALS),)
  ifneq ($(SELECTION),)
    CHECK := $(shell $(MAKE_HINTS) $(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) plan $(JOB_ARGS) $(SELECTION_ARGS) > /dev/null; echo $$?)
  else
    CHECK := $(shell $(MAKE_HINTS) $(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) plan $(JOB_ARGS) > /dev/null; echo $$?)
  endif
  ifneq ($(CHECK),0)
    $(error nothing was run; fix the problem reported above)
  endif
  ifeq ($(DRY_RUN),)
    MAKEFLAGS += -q
  endif
endif

# make exits 1 or 2 only, and 2 means an invalid pipeline: under make a run
# refused by the lock exits 1 (seedrun itself exits 75). The variable is
# exported by the rules, not put on the command line, so that the shell
# execs seedrun and signals sent to make reach seedrun directly.
seed-all resume $(SELECTION): export SEEDRUN_LOCKED_EXIT_CODE := 1
# seedrun's hints tell make users to pass REPLAN=1 instead of --replan,
# PIPELINE=FILE instead of --pipeline FILE and KEEP=N instead of --keep N.
seed-all resume plan graph validate report clean $(SELECTION): export SEEDRUN_REPLAN_ARGUMENT := REPLAN=1

.DEFAULT_GOAL := help
.PHONY: $(COMMANDS)

help:
	@echo 'seedrun: run the vendor-sync pipeline with make, a log per step and an HTML report'
	@echo ''
	@echo '  make seed-all            run every enabled phase of the pipeline'
	@echo '  make STEP ...            run the named steps or targets (for example: make seed-meyer)'
	@echo '  make pair-NAME           run a main/dependent pair (for example: make pair-quadratec)'
	@echo '  make phase-NAME          run one phase (for example: make phase-vendors)'
	@echo '  make resume              rerun the steps that did not succeed in the newest run'
	@echo '  make resume RUN_ID=ID    resume the run ID (its run directory'"'"'s name) instead of the newest'
	@echo '  make resume REPLAN=1     resume with the pipeline file as it is now, not the run'"'"'s own plan'
	@echo '  make plan                print what seed-all would run, in start order'
	@echo '  make graph               print the plan as a Graphviz DOT graph'
	@echo '  make validate            check the pipeline file and list every problem'
	@echo '  make report [RUN_ID=ID]  render the HTML report of the newest run, or of run ID, again'
	@echo '  make clean [KEEP=N]      delete all but the newest N runs (default: keep_runs of the pipeline)'
	@echo '  make test                run the test suite'
	@echo '  make bench               run the benchmarks and write bench/results/'
	@echo ''
	@echo 'Variables: PIPELINE=FILE (default pipeline.toml), JOBS=N (steps at once), PYTHON=python3.11'
	@echo 'Exit codes: 0 succeeded, 1 a step failed or another run holds the lock, 2 invalid pipeline or selection,'
	@echo '130 interrupted (seedrun itself exits 75 when another run holds the lock)'

venv: $(SEEDRUN)

$(SEEDRUN): $(ROOT)pyproject.toml
	$(RUN_RECIPE)@$(BOOTSTRAP)
	$(RUN_RECIPE)@touch $(call quote,$(SEEDRUN))

ifeq ($(PREVIEW_GOALS),)
seed-all: $(SEEDRUN)
	$(RUN_RECIPE)@$(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) run $(RUN_JOB_ARGS)

ifneq ($(SELECTION),)
.PHONY: $(SELECTION)
$(firstword $(SELECTION)): $(SEEDRUN)
	$(RUN_RECIPE)@$(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) run $(RUN_JOB_ARGS) $(SELECTION_ARGS)
$(wordlist 2,$(words $(SELECTION)),$(SELECTION)): $(firstword $(SELECTION))
	$(RUN_RECIPE)@:
endif

resume: $(SEEDRUN)
	$(RUN_RECIPE)@$(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) resume $(RUN_JOB_ARGS) $(REPLAN_ARGS) $(RUN_ID_ARGS)
else
# The names are arguments of plan and graph; `make plan resume` explains a resume.
.PHONY: $(SELECTION)
seed-all resume $(SELECTION): $(SEEDRUN)
	@:
endif

plan: $(SEEDRUN)
	@$(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) plan $(RUN_JOB_ARGS) $(if $(filter resume,$(MAKECMDGOALS)),--resume $(RUN_ID_ARGS) $(REPLAN_ARGS),$(SELECTION_ARGS))

graph: $(SEEDRUN)
	@$(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) graph $(SELECTION_ARGS)

validate: $(SEEDRUN)
	@$(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) validate

report: $(SEEDRUN)
	@$(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) report $(RUN_ID_ARGS)

clean: $(SEEDRUN)
	@$(call quote,$(SEEDRUN)) $(GLOBAL_ARGS) clean$(if $(KEEP_ARGS), $(KEEP_ARGS))

test-deps: $(SEEDRUN)
	@$(INSTALL) $(call quote,$(ROOT)[test])

test: test-deps
	cd $(call quote,$(ROOT)) && $(call quote,$(BIN)/python) -m pytest $(PYTEST_ARGS)

bench: test-deps
	cd $(call quote,$(ROOT)) && $(call quote,$(BIN)/python) -m bench $(BENCH_ARGS)
