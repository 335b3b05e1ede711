"""Settings: TOML < environment < explicit options; secrets from the environment only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.app.config import ConfigError, SecretInConfigFile, load_settings


def test_toml_then_env_then_explicit_overrides(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "conf" / "supportbot.toml"
    config.parent.mkdir()
    config.write_text(
        'admins = ["slack:U1"]\n[[docs]]\npath = "docs"\nname = "product"\n'
        "[retrieval]\ntop_k = 5\nmin_similarity = 0.4\n[generation]\nmax_new_tokens = 99\n"
    )
    clean_env.setenv("SUPPORTBOT_RETRIEVAL__TOP_K", "7")
    settings = load_settings(config, data_dir=tmp_path / "data")
    assert settings.retrieval.top_k == 7  # env beats the file
    assert settings.retrieval.min_similarity == 0.4 and settings.generation.max_new_tokens == 99
    assert settings.admins == ["slack:U1"]
    assert settings.docs[0].path == config.parent / "docs" and settings.docs[0].name == "product"
    assert settings.data_dir == tmp_path / "data" and settings.index_uri == str(tmp_path / "data" / "index")


def test_secrets_come_from_the_environment_and_never_serialize(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    settings = load_settings(data_dir=tmp_path)
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-very-secret"
    shown = json.dumps(settings.public_view()) + repr(settings) + str(settings) + settings.model_dump_json()
    assert "xoxb-very-secret" not in shown
    assert settings.public_view()["slack_bot_token"] == "set"
    assert settings.public_view()["discord_token"] == "not set"


def test_a_secret_in_the_config_file_is_refused(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "supportbot.toml"
    config.write_text('slack_bot_token = "xoxb-in-a-file"\n')
    with pytest.raises(SecretInConfigFile, match="set the SLACK_BOT_TOKEN environment variable instead") as caught:
        load_settings(config)
    assert "xoxb-in-a-file" not in str(caught.value)


def test_invalid_values_and_missing_file_are_reported(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")
    clean_env.setenv("SUPPORTBOT_EMBEDDING__DTYPE", "float8")
    with pytest.raises(Exception, match="dtype"):
        load_settings(data_dir=tmp_path)


def test_a_misspelt_or_retired_key_is_refused_in_one_line_without_its_value(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "supportbot.toml"
    config.write_text('[retrieval]\nvector_weight = 0.6\ntopk = 5\n[generation]\nbackend = "hal9000"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == (
        "retrieval.vector_weight: no longer a setting (remove it): BM25's share now adapts to each question, up "
        "to retrieval.text_weight, and the embedding has the rest; retrieval.topk: unknown setting (did you mean "
        "top_k?); generation.backend: String should match pattern '^(local|openai)$'")
    assert "hal9000" not in str(caught.value) and "0.6" not in str(caught.value)
    config.write_text('[retreival]\ntop_k = 5\n[index]\nchunk_max_tokenz = 5\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == ("index.chunk_max_tokenz: unknown setting (did you mean chunk_max_tokens?); "
                                 "retreival: unknown setting (did you mean retrieval?)")


@pytest.mark.parametrize("line", ['slack_token = "xoxb-leak-typo-444"', '[slack]\nbot_token = "xoxb-1-2-abc"',
                                  '[generation]\nremote_model = "sk-proj-0123456789abcdefghij"'])
def test_a_secret_looking_value_under_any_key_is_refused_without_echoing_it(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, line: str
) -> None:
    config = tmp_path / "supportbot.toml"
    config.write_text(line + "\n")
    with pytest.raises(SecretInConfigFile, match="holds what looks like a token or key") as caught:
        load_settings(config)
    value = line.split('"')[1]
    assert value not in str(caught.value) and "\n" not in str(caught.value)


def test_state_url_must_be_postgresql_and_never_holds_a_password(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "supportbot.toml"
    config.write_text('[state]\nurl = "postgresql://supportbot@db.internal:5432/supportbot"\n')
    assert load_settings(config).state.url == "postgresql://supportbot@db.internal:5432/supportbot"
    clean_env.setenv("SUPPORTBOT_STATE__URL", "postgresql://supportbot:hunter2@db.internal/supportbot")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == "state.url: it holds a password: set it in PGPASSWORD or ~/.pgpass instead"
    assert "hunter2" not in str(caught.value)
    clean_env.setenv("SUPPORTBOT_STATE__URL", "postgresql://supportbot@db.internal/supportbot?password=hunter2")
    with pytest.raises(ConfigError) as caught:  # libpq reads a password from the query too
        load_settings(config)
    assert str(caught.value) == "state.url: it holds a password: set it in PGPASSWORD or ~/.pgpass instead"
    from bot.app.pg_state import redacted

    assert redacted("postgresql://u@h/db?password=hunter2&sslmode=require") == "postgresql://u@h/db"
    clean_env.setenv("SUPPORTBOT_STATE__URL", "mysql://db.internal/supportbot")
    with pytest.raises(ConfigError, match=r"^state.url: it must start with postgresql:// \(got 'mysql'\)$"):
        load_settings(config)


def test_sources_that_would_share_or_escape_their_folder_are_refused_in_one_line(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:  # two sites on one host: both default to its name
        load_settings(None, docs=[{"url": "https://docs.example.com/a/"}, {"url": "https://docs.example.com/b/"}])
    assert str(caught.value) == "docs: two docs sources are named 'docs.example.com': give each a `name` of its own"
    with pytest.raises(ConfigError) as caught:  # <data_dir>/sources/.. is the data dir itself
        load_settings(None, docs=[{"git": "https://example.com/docs.git", "name": ".."}])
    assert str(caught.value) == ("docs.0: source name '..': use letters, digits, '.', '_' and '-' only, "
                                 "not starting with '.'")
