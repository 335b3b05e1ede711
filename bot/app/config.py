"""Settings: defaults < TOML file < SUPPORTBOT_* environment < explicit CLI options.

Nested sections map to TOML tables ([index], [retrieval], ...) and to environment variables
with a double underscore (SUPPORTBOT_RETRIEVAL__TOP_K=6). Platform secrets are read from
their own well-known variables only and are SecretStr: they never print, log or serialize.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "supportbot.toml"
_SOURCE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SOURCE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ConfigError(ValueError):
    """A configuration that cannot be used, said in one line: where, and what is wrong
    (never the value, which may be a secret)."""


class _Section(BaseModel):
    """A [table] of the config file: a misspelt or retired key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "supportbot"


def crontab_line(key: str, value: str, example: str) -> str:
    """A schedule setting: empty (off) or five crontab fields; the scheduler checks the rest."""
    if value.strip() and len(value.split()) != 5:
        raise ValueError(f"{key} {value!r} must be a crontab line with 5 fields, e.g. '{example}'")
    return value.strip()


class DocsSource(_Section):
    """A named docs source: a local folder, a git repository pulled before each re-index, or
    a website crawled before each re-index. Channel scoping refers to sources by `name`."""

    path: Path | None = Field(None, description=(
        "local folder, or a .zip (a wiki export, unpacked under <data_dir>/sources/<name> when it changes); "
        "for a git source, the docs folder inside the repo"))
    name: str = ""
    git: str | None = Field(None, description="repository URL; checked out under <data_dir>/sources/<name>")
    branch: str | None = Field(None, description="git branch (default: the remote's default branch)")
    url: str | None = Field(None, description=(
        "docs website to crawl (its sitemap, else its links), staying under this URL's host and folder; "
        "mirrored under <data_dir>/sources/<name>"))
    include: list[str] = Field(default_factory=list, description=(
        "website: URL patterns (* wildcards) to crawl instead of everything under `url`"))
    max_pages: int = Field(1000, ge=1, description="website: most pages crawled and indexed")
    delay_ms: int = Field(500, ge=0, description=(
        "website: pause between two requests (robots.txt Crawl-delay may ask for more)"))
    timeout_s: float = Field(20.0, gt=0, description="website: per request; a page that times out keeps its last version")
    retries: int = Field(3, ge=0, le=10, description="website: tries after a timeout, 5xx or 429 (Retry-After obeyed)")
    url_base: str | None = None
    exclude: list[str] = Field(default_factory=list, description=(
        "folder/git: file patterns to skip; website: URL patterns (* wildcards) never crawled"))
    anchors: str = Field("github", pattern="^(github|mkdocs|sphinx|none)$", description=(
        "folder/git with url_base: how citations link to a heading, as the site's generator slugs it: "
        "github (GitHub, Docusaurus), mkdocs (Python-Markdown toc), sphinx (docutils), none"))

    @model_validator(mode="after")
    def _path_or_git(self) -> DocsSource:
        kinds = [kind for kind, value in (("path", self.path is not None and not self.git), ("git", self.git),
                                          ("url", self.url)) if value]
        if not kinds:
            raise ValueError("a docs source needs a `path`, a `git` URL or a website `url`")
        if len(kinds) > 1 and "url" in kinds:
            raise ValueError("a website source (`url`) takes no `path` or `git`")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"website url {self.url!r} must start with http:// or https:// and name a host")
            if not self.name:
                self.name = parts.hostname
        if self.path is not None and not self.git and self.path.suffix.lower() == ".zip" and not self.name:
            self.name = _SOURCE_NAME_UNSAFE.sub("-", self.path.stem).strip("-") or "docs"
        if self.git and not self.name:
            self.name = self.git.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "docs"
        if self.git and self.path is not None and self.path.is_absolute():
            raise ValueError(f"`path` of git source {self.name!r} must be relative to the repository")
        if self.name and (not _SOURCE_NAME.fullmatch(self.name) or self.name.startswith(".")):
            raise ValueError(f"source name {self.name!r}: use letters, digits, '.', '_' and '-' only, "
                             "not starting with '.'")  # ".." would be the data dir itself
        return self


class IndexConfig(_Section):
    uri: str | None = Field(None, description="LanceDB location; default <data_dir>/index (s3:// works too)")
    storage_options: dict[str, str] = Field(default_factory=dict, description=(
        "object store settings for an s3:// uri (aws_endpoint, aws_region, keys...), as JSON"))
    chunk_max_tokens: int = Field(200, ge=16, le=512, description="chunk size in embedder tokens, title included")
    chunk_overlap_tokens: int = Field(32, ge=0, description="tokens shared by neighbouring chunks")
    max_file_mb: float = Field(20.0, gt=0, description="larger files are skipped with a reason")
    max_text_chars: int = Field(3_000_000, ge=1000, description=(
        "a file whose extracted text is longer is skipped with a reason (~4,000 chunks)"))
    encodings: list[str] = Field(default_factory=lambda: ["utf-8"], description="text encodings tried in order")
    vector_index_min_chunks: int = Field(100_000, ge=1, description=(
        "from this many chunks on, vectors are searched through an IVF-PQ index instead of exactly in memory"))
    vector_index_nprobes: int = Field(48, ge=1, description="IVF lists scanned per query (recall vs speed)")
    vector_index_rescored: int = Field(200, ge=1, description=(
        "nearest candidates by compressed code re-scored on their raw vectors (at least the number asked for)"))


class EmbeddingConfig(_Section):
    model: str = Field("bundled", description="'bundled' (all-MiniLM-L6-v2) or any sentence-transformers path/id")
    batch_size: int = Field(16, ge=1, description="chunks embedded at once")
    dtype: str = Field("auto", pattern="^(auto|float32|bfloat16)$", description=(
        "auto: bfloat16 where the CPU has AMX/AVX512-BF16"))


class RetrievalConfig(_Section):
    top_k: int = Field(3, ge=1, le=20, description="documents the answer is generated from")
    candidates: int = Field(100, ge=1, description="chunks fetched by each search before fusion")
    text_weight: float = Field(0.4, ge=0, le=1, description=(
        "BM25's share of the fusion when the best full-text hits hold every content word of the question; "
        "scaled down per question by how many they hold (the rest is embedding similarity)"))
    page_weight: float = Field(0.1, ge=0, description="share of the page's opening-chunk similarity added to each chunk")
    identifier_boost: float = Field(0.15, ge=0, description="bonus when an error code / identifier matches verbatim")
    min_similarity: float = Field(0.40, ge=-1, le=1, description="below this the bot says the docs lack the answer")
    min_covered_similarity: float = Field(0.25, ge=-1, le=1, description=(
        "...unless the passage holds every subject word of the question and is at least this close"))


class GenerationConfig(_Section):
    model: str = Field("bundled", description="'bundled' (SmolLM2-135M-Instruct) or a causal LM path/id")
    max_new_tokens: int = Field(160, ge=1, le=4096, description="longest answer, in tokens")
    repetition_penalty: float = Field(1.0, ge=1.0, description=(
        "penalty on repeating the reply's own tokens, never the prompt's; 1.0 (off) suits the 135M model, "
        "whose loops the answer tidying trims"))
    threads: int = Field(0, ge=0, description="CPU threads for generation (0: every core the process may use)")
    weights: str = Field("auto", pattern="^(auto|int8|fp32)$", description=(
        "local: int8 runs the linear layers on int8 weights with bf16 arithmetic, about 2.5x the tokens/s of "
        "fp32 on two cores with the same composed answers and voices (bench_generation, bench_answers); fp32 "
        "runs the model as loaded; auto: int8 where the CPU computes in bf16 natively (AVX-512 BF16, AMX), "
        "else fp32"))
    max_batch: int = Field(32, ge=1, le=64, description=(
        "local: questions whose generation is decoded together (fewer when their prompts are long: at most "
        "6,144 tokens of rows x the longest row)"))
    backend: str = Field("local", pattern="^(local|openai)$", description=(
        "local: the model in this process; openai: an OpenAI-compatible server (vLLM with LoRA adapters)"))
    remote_url: str | None = Field(None, description="the server's API base, e.g. http://vllm:8000/v1")
    remote_model: str | None = Field(None, description="served name of the base model; a voice is served "
                                                       "as a LoRA adapter named like the voice")
    timeout_s: float = Field(60.0, gt=0, description="remote: connect and between streamed chunks")
    retries: int = Field(2, ge=0, description="remote: retries of a failed request before giving up")

    @model_validator(mode="after")
    def _remote_needs_url(self) -> GenerationConfig:
        if self.backend == "openai" and not (self.remote_url and self.remote_model):
            raise ValueError("generation.backend = 'openai' needs generation.remote_url and generation.remote_model")
        return self


class VoiceConfig(_Section):
    channels: dict[str, str] = Field(default_factory=dict, description="channel id -> voice name")
    merge: bool = Field(True, description="merge the voice in use into the weights (no speed cost)")


class ReindexConfig(_Section):
    """The nightly re-index and its eval gate."""

    schedule: str = Field("0 3 * * *", description="crontab line (minute hour day month weekday); '' = never")
    timezone: str = Field("", description="IANA zone for the schedule, e.g. Europe/Paris; '' = this machine's")
    misfire_grace_minutes: int = Field(720, ge=1, description=(
        "a run missed while the bot was down still happens at start if it is at most this late"))
    in_serve: bool = Field(True, description="run the schedule inside `supportbot serve`; false when "
                                              "a separate `supportbot scheduler` runs it for many replicas")
    admin_channel: str | None = Field(None, description="where scheduled runs post their summary, "
                                                        "e.g. slack:C0123ABCD or discord:123456789")
    gate_qa_file: Path | None = Field(None, description="QA JSONL; a new index must keep its hit@5 to go live")
    gate_max_drop: float = Field(0.05, ge=0, le=1, description="largest hit@5 drop (absolute) still accepted")
    gate_min_hit_at_5: float = Field(0.0, ge=0, le=1, description="hit@5 a new index needs in any case")

    @field_validator("schedule")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        return crontab_line("schedule", value, "0 3 * * *")


class AnswersConfig(_Section):
    show_indexed_at: bool = Field(False, description="end answers with 'docs indexed <when>'")
    channel_sources: dict[str, list[str]] = Field(default_factory=dict, description=(
        "channel id -> docs source names it may answer from; other channels use every source"))
    mode: str = Field("auto", pattern="^(auto|composed|free)$", description=(
        "composed: facts quoted from the passages, the model writes only a lead-in and sign-off; free: the "
        "model writes the answer, unsupported sentences are dropped; auto: composed for the local backend, "
        "free for an OpenAI-compatible engine"))
    frame: bool = Field(True, description="composed answers: the model (in the active voice) writes a lead-in and sign-off")


class StateConfig(_Section):
    """Where the state that replicas share lives (answers, ratings, threads, delivered events,
    the re-index lock, the schedule)."""

    url: str | None = Field(None, description=(
        "postgresql://user@host:5432/db keeps it in PostgreSQL, for replicas on several hosts (the password "
        "goes in PGPASSWORD or ~/.pgpass, never here); unset: the SQLite file feedback_db, for one host"))
    pool_size: int = Field(8, ge=1, description="connections each process keeps open to the database at most")
    retry_s: float = Field(5.0, gt=0, description=(
        "while the database is away, how often one use tries it again (the others fail at once instead of "
        "holding up a chat event)"))

    @field_validator("url")
    @classmethod
    def _postgresql_only(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"it must start with postgresql:// (got {value.split(':')[0]!r})")
        if value and "password=" in value.split("?", 1)[-1].lower() and "?" in value:
            raise ValueError("it holds a password: set it in PGPASSWORD or ~/.pgpass instead")
        if value and "@" in value and ":" in value.split("//", 1)[1].split("@")[0]:
            raise ValueError("it holds a password: set it in PGPASSWORD or ~/.pgpass instead")
        return value or None


class ServeConfig(_Section):
    """What `supportbot serve` runs and how much it takes on at once."""

    platforms: list[str] = Field(default_factory=list, description=(
        "'slack' and/or 'discord'; empty: every platform whose token is set"))
    queue_size: int = Field(100, ge=1, description="questions that may wait their turn; more get a 'busy' reply")
    workers: int = Field(32, ge=1, description=(
        "questions answered at once; their generation is decoded together, in one batch (see generation.max_batch)"))
    max_wait_s: float = Field(300.0, gt=0, description=(
        "a question that would wait longer than this (estimated from recent answers) gets a 'busy' reply; "
        "those that wait are told their place in line"))
    health_host: str = Field("0.0.0.0", description="address for /healthz and /metrics")
    health_port: int = Field(9090, ge=0, le=65535, description=(
        "/healthz and /metrics (Prometheus) for any platform; 0: off (Slack HTTP mode serves them too)"))
    drain_seconds: float = Field(30.0, ge=0, description=(
        "on SIGTERM: how long answers in flight may take to finish (new questions are told to ask again)"))
    log_chat_content: bool = Field(False, description=(
        "at -v/-vv, let the Slack and Discord libraries log what they send and receive (questions and "
        "answers in full); off: they log warnings only"))


class SlackConfig(_Section):
    mode: str = Field("socket", pattern="^(socket|http)$", description=(
        "socket: Socket Mode (SLACK_APP_TOKEN), one box; http: Events API on host:port (SLACK_SIGNING_SECRET)"))
    host: str = Field("0.0.0.0", description="HTTP mode: address to listen on")
    port: int = Field(3000, ge=0, le=65535, description="HTTP mode: port")
    path: str = Field("/slack/events", description="HTTP mode: events, commands and interactivity path")
    api_base_url: str = Field("https://slack.com/api/", description="Slack Web API (GovSlack: https://slack-gov.com/api/)")
    admin_group: str | None = Field(None, description="user group id (S0123) whose members are admins too")
    human_group: str | None = Field(None, description="user group id mentioned by 'Talk to a human'")
    edit_interval_s: float = Field(1.0, ge=0.2, description="streamed answers are edited at most this often")
    native_streaming: bool = Field(True, description=(
        "stream answers with Slack's chat.startStream where the workspace offers it; else edit a placeholder"))
    max_request_kb: int = Field(256, ge=16, description=(
        "HTTP mode: larger requests are refused (413) before they are read; Slack's own are a few KB"))


class DiscordConfig(_Section):
    guild_ids: list[int] = Field(default_factory=list, description=(
        "servers to register the slash commands in (instant); empty: globally (can take an hour)"))
    admin_role_ids: list[int] = Field(default_factory=list, description="members with these roles are admins too")
    human_role_id: int | None = Field(None, description="role mentioned by 'Talk to a human'")
    sharded: bool = Field(False, description="AutoShardedBot, for bots in many servers")
    shard_count: int | None = Field(None, ge=1, description="with sharded: fixed count (default: Discord's advice)")
    edit_interval_s: float = Field(1.0, ge=0.2, description="streamed answers are edited at most this often")
    direct_messages: bool = Field(False, description=(
        "answer direct messages to the bot (asks Discord for the DM intent)"))


class InsightsConfig(_Section):
    """What is kept about each question, for how long, and the weekly digest for the admins."""

    retention_days: int = Field(90, ge=0, description=(
        "questions older than this are deleted with their ratings, comments and escalations; 0 keeps them"))
    hash_user_ids: bool = Field(True, description=(
        "store who asked and who rated as a keyed hash (counts still work); false stores the platform ids"))
    digest_schedule: str = Field("0 9 * * 1", description=(
        "crontab line for the digest posted to the admins (in reindex.timezone); '' = no digest"))
    digest_channel: str | None = Field(None, description=(
        "where the digest goes, e.g. slack:C0123ABCD or discord:123456789; default reindex.admin_channel"))
    digest_days: int = Field(7, ge=1, le=366, description="days the digest looks back over")

    @field_validator("digest_schedule")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        return crontab_line("digest_schedule", value, "0 9 * * 1")


class ConversationConfig(_Section):
    history_turns: int = Field(3, ge=0, description="earlier exchanges a follow-up sees")
    ttl_hours: float = Field(24.0, gt=0, description="a conversation is forgotten after this long idle")


SECRET_FIELDS = {
    "slack_bot_token": "SLACK_BOT_TOKEN", "slack_app_token": "SLACK_APP_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET", "discord_token": "DISCORD_TOKEN",
    "openai_api_key": "OPENAI_API_KEY",
}


SECRET_HELP = {
    "SLACK_BOT_TOKEN": "Slack bot token (xoxb-...): OAuth & Permissions -> Bot User OAuth Token",
    "SLACK_APP_TOKEN": "Slack app-level token (xapp-..., scope connections:write) for Socket Mode",
    "SLACK_SIGNING_SECRET": "Slack signing secret (Basic Information) for HTTP mode",
    "DISCORD_TOKEN": "Discord bot token (Developer Portal -> Bot)",
    "OPENAI_API_KEY": "API key of the OpenAI-compatible generation server, if it wants one",
}


class SecretInConfigFile(ValueError):
    pass


# Values shaped like platform credentials: Slack bot/user/app tokens, OpenAI-style keys,
# Discord bot tokens (three base64url parts), PEM private keys.
_SECRET_VALUE = re.compile(
    r"^(xox[abposr]-|xapp-|sk-[A-Za-z0-9_-]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY)"
    r"|^[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}$")


class _TomlWithoutSecrets(TomlConfigSettingsSource):
    """The TOML file may hold every setting but the platform secrets, under any key."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        for field, variable in SECRET_FIELDS.items():
            if field in data or variable in data:
                raise SecretInConfigFile(
                    f"{field} must not be in the config file: set the {variable} environment variable instead"
                )
        for where, value in _leaves(data):
            if isinstance(value, str) and _SECRET_VALUE.search(value.strip()):
                raise SecretInConfigFile(
                    f"{where} holds what looks like a token or key: secrets never go in the config file; "
                    f"set {', '.join(SECRET_FIELDS.values())} in the environment instead")
        return data


def _leaves(data: Any, where: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in _leaves(value, f"{where}.{key}" if where else key)]
    if isinstance(data, list):
        return [leaf for i, value in enumerate(data) for leaf in _leaves(value, f"{where}[{i}]")]
    return [(where, data)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_", env_nested_delimiter="__", extra="forbid", populate_by_name=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir, description=(
        "index, model cache, voices, feedback, schedule (default ~/.local/share/supportbot)"))
    model_cache_dir: Path | None = Field(None, description="converted base model (default <data_dir>/models)")
    feedback_db: Path | None = Field(None, description=(
        "answers, ratings, thread memory and delivered event ids; replicas behind one load balancer share one "
        "(default <data_dir>/feedback.sqlite)"))
    docs: list[DocsSource] = Field(default_factory=list, description="empty: the bundled sample docs")
    admins: list[str] = Field(default_factory=list, description="platform-prefixed user ids, e.g. slack:U123")
    index: IndexConfig = Field(default_factory=IndexConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    conversation: ConversationConfig = Field(default_factory=ConversationConfig)
    voice: VoiceConfig = Field(default_factory=VoiceConfig)
    reindex: ReindexConfig = Field(default_factory=ReindexConfig)
    insights: InsightsConfig = Field(default_factory=InsightsConfig)
    answers: AnswersConfig = Field(default_factory=AnswersConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    discord: DiscordConfig = Field(default_factory=DiscordConfig)

    slack_bot_token: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"), exclude=True)
    slack_app_token: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_APP_TOKEN"), exclude=True)
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"), exclude=True)
    discord_token: SecretStr | None = Field(None, validation_alias=AliasChoices("DISCORD_TOKEN"), exclude=True)
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY"), exclude=True)

    @field_validator("docs")
    @classmethod
    def _one_folder_per_source(cls, value: list[DocsSource]) -> list[DocsSource]:
        """Git, website and zip sources live in <data_dir>/sources/<name>: two of one name would
        overwrite each other's files (two sites on one host default to the same name)."""
        names = [source.name for source in value if source.name]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"two docs sources are named {twice[0]!r}: give each a `name` of its own")
        return value

    @field_validator("docs", mode="before")
    @classmethod
    def _docs_from_paths(cls, value: Any) -> Any:
        """Accept plain paths (`docs = ["./docs"]`, SUPPORTBOT_DOCS='["./a","./b"]') too."""
        if isinstance(value, (str, Path)):
            value = [value]
        if isinstance(value, list):
            return [{"path": v} if isinstance(v, (str, Path)) else v for v in value]
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlWithoutSecrets(settings_cls)

    @property
    def index_uri(self) -> str:
        return self.index.uri or str(self.data_dir / "index")

    @property
    def feedback_path(self) -> Path:
        return self.feedback_db or self.data_dir / "feedback.sqlite"

    @property
    def voices_dir(self) -> Path:
        return self.data_dir / "voices"

    @property
    def sources_dir(self) -> Path:
        """Where git sources are checked out."""
        return self.data_dir / "sources"

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"

    def public_view(self) -> dict[str, Any]:
        """Settings safe to show an admin: secrets only as set / not set."""
        view = self.model_dump(mode="json", exclude=set(SECRET_FIELDS))
        for name in SECRET_FIELDS:
            view[name] = "set" if getattr(self, name) else "not set"
        return view


# Settings that existed once: why they went, so an old config file is easy to fix.
_RETIRED = {
    "retrieval.vector_weight": "no longer a setting (remove it): BM25's share now adapts to each question, "
                               "up to retrieval.text_weight, and the embedding has the rest",
}


def describe_errors(err: ValidationError) -> str:
    """One line for every problem: `retrieval.vector_weight: unknown setting; ...`."""
    problems = []
    for error in err.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "config"
        if error["type"] == "extra_forbidden" and where in _RETIRED:
            problems.append(f"{where}: {_RETIRED[where]}")
        elif error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(error["loc"][-1]), _keys_at(error["loc"][:-1]), n=1)
            problems.append(f"{where}: unknown setting" + (f" (did you mean {close[0]}?)" if close else ""))
        else:
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the table at `loc` (`()` is the file's top level)."""
    model: Any = Settings
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None) if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif part == loc[-1] or isinstance(part, int):
            return []
    return [name for name in model.model_fields if name not in SECRET_FIELDS]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (explicit, $SUPPORTBOT_CONFIG, or ./supportbot.toml if present)."""
    path = config_file or (Path(os.environ["SUPPORTBOT_CONFIG"]) if os.environ.get("SUPPORTBOT_CONFIG") else None)
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    bound = type("Settings", (Settings,), {
        "model_config": {**Settings.model_config, "toml_file": path},
        "__module__": __name__,
    })
    try:
        settings = bound(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        raise ConfigError(describe_errors(err)) from None
    if path is not None:  # relative paths in a config file are relative to that file
        base = Path(path).resolve().parent
        for source in settings.docs:
            if source.path is not None and not source.git and not source.path.is_absolute():
                source.path = base / source.path
        gate = settings.reindex.gate_qa_file
        if gate is not None and not gate.is_absolute():
            settings.reindex.gate_qa_file = base / gate
    return settings


def env_reference() -> str:
    """Every environment variable supportbot reads, one commented, empty line each (.env.example)."""
    lines = ["# supportbot environment. Secrets come only from here; every other setting may also",
             "# live in the TOML file. Lists and tables are JSON, e.g. SUPPORTBOT_ADMINS='[\"slack:U123\"]'.",
             "", "# ----- secrets (never in the config file, never logged) -----"]
    for variable in SECRET_FIELDS.values():
        lines += [f"# {SECRET_HELP[variable]}", f"{variable}=", ""]
    lines += ["# ----- where things are -----",
              "# TOML config file (default ./supportbot.toml when present)", "SUPPORTBOT_CONFIG=", ""]
    for name, field in Settings.model_fields.items():
        if name in SECRET_FIELDS:
            continue
        section = field.annotation if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) \
            else None
        if section is None:
            lines += [f"# {_help(field)}", f"SUPPORTBOT_{name.upper()}=", ""]
            continue
        lines.append(f"# ----- [{name}] -----")
        for sub, subfield in section.model_fields.items():
            lines += [f"# {_help(subfield)}", f"SUPPORTBOT_{name.upper()}__{sub.upper()}=", ""]
    return "\n".join(lines).rstrip() + "\n"


def _help(field: Any) -> str:
    default = None if field.default_factory is default_data_dir else field.get_default(call_default_factory=True)
    shown = "" if default in (None, "", [], {}) else f" (default: {default})"
    return (field.description or "see README, Configuration") + shown
