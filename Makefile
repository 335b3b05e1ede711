# The README's two commands: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
QUESTION ?= How much does the Team plan cost?
# Test processes: most of the suite waits on subprocesses importing torch (one core each), so two
# workers halve its time on 2 cores. A test file stays on one worker (its module fixtures are shared).
TEST_WORKERS ?= 2

.PHONY: demo chat test install benchmarks

demo: install
	$(BIN)/supportbot index
	$(BIN)/supportbot ask "$(QUESTION)"

chat: install
	$(BIN)/supportbot chat

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	scripts/install.sh
	touch $@

test: install
	scripts/install-system-packages.sh
	$(BIN)/lint-imports
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

benchmarks: install
	$(BIN)/python -m tests.benchmarks.bench_retrieval
	$(BIN)/python -m tests.benchmarks.bench_scale
	$(BIN)/python -m tests.benchmarks.bench_reindex
	$(BIN)/python -m tests.benchmarks.bench_crawl
	$(BIN)/python -m tests.benchmarks.bench_slack
	$(BIN)/python -m tests.benchmarks.bench_s3
	$(BIN)/python -m tests.benchmarks.bench_voice
	$(BIN)/python -m tests.benchmarks.bench_voice_frame
	$(BIN)/python -m tests.benchmarks.bench_insights
	$(BIN)/python -m tests.benchmarks.bench_shared_state
