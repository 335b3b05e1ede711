"""Shared fixtures: the real bundled embedding model, real LanceDB on tmp paths, and the
real bundled generator converted once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from knowledge.embedding import Embedder  # noqa: E402


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """One loaded embedding model for the whole session (loading costs seconds)."""
    return Embedder()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the bundled GGUF is converted: once per session, or reused from
    $SUPPORTBOT_TEST_MODEL_CACHE so repeated local runs skip the conversion."""
    shared = os.environ.get("SUPPORTBOT_TEST_MODEL_CACHE")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    return tmp_path_factory.mktemp("models")


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No SUPPORTBOT_* or platform secrets leak in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("SUPPORTBOT_") or key in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
                                                    "SLACK_SIGNING_SECRET", "DISCORD_TOKEN"):
            monkeypatch.delenv(key, raising=False)
    return monkeypatch


DISCORD_ADMIN = 930000000000000009


@pytest.fixture(scope="session")
def core(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, model_cache: Path):
    """The real core the chat platforms talk to: sample docs indexed in LanceDB, the bundled
    embedder and generator (short answers, to keep the suite quick)."""
    from bot.app.config import load_settings
    from bot.app.application import App

    app = App(load_settings(None, data_dir=tmp_path_factory.mktemp("chat-core"), model_cache_dir=model_cache,
                            admins=["slack:UADMIN", f"discord:{DISCORD_ADMIN}"], generation={"max_new_tokens": 40}),
              embedder=embedder)
    app.index_ops.index()
    return app


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server from Debian's packages on 127.0.0.1, for the whole session (in a
    temp dir of its own: pytest's are private to this user, and the server runs as postgres)."""
    import shutil
    import tempfile

    from tests.pg_server import LocalPostgres, server_binaries

    bin_dir = server_binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin): "
                    "run scripts/install-system-packages.sh")
    home = Path(tempfile.mkdtemp(prefix="supportbot-pg-"))
    home.chmod(0o755)
    server = LocalPostgres(bin_dir, home / "cluster")
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop_if_running()
        shutil.rmtree(home, ignore_errors=True)
