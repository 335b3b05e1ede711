# The README's two commands: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
QUESTION ?= How much does the Team plan cost?

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
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest

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
