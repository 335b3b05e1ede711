"""Answers people can trust, on the real core (sample docs in LanceDB, the bundled embedder and
generator): every fact is quoted from a cited passage, noise and off-topic questions abstain,
yes/no questions lead with the answer, and what streams is exactly what is kept."""

from __future__ import annotations

import re

import pytest

from bot.answer_metrics import garbled, invented_identifiers, yes_no_of
from bot.answering import ABSTAIN_TEXT
from bot.types import Question

pytestmark = pytest.mark.slow


def ask(core, text: str):
    pieces: list[str] = []
    answer = core.answers.answer(Question(text=text), on_token=pieces.append)
    if not answer.abstained:
        assert "".join(pieces) == answer.answer  # streamed text is never withdrawn or changed
    passages = [p.text for p in core.answers.retrieve(Question(text=text), []) if p.relevant]
    if not answer.abstained:
        assert garbled(answer.answer) is None, answer.answer
        assert invented_identifiers(answer.answer, passages) == set(), answer.answer
    return answer


def outside_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def test_silent_install_quotes_the_msiexec_command_in_a_code_block(core) -> None:
    answer = ask(core, "How do I do a silent install on Windows?")
    assert "```powershell\nmsiexec /i DriftwoodSetup.msi /qn\n```" in answer.answer
    assert "run the MSI without any user interface" in answer.answer
    assert answer.citations[0].source == "setup/install-windows.md" and answer.citations[0].n == 1
    assert "[1]" in answer.answer and "drift install" not in answer.answer


def test_maximum_file_size_is_the_documented_5_gb(core) -> None:
    answer = ask(core, "What is the maximum file size?")
    assert "The maximum file size is **5 GB per file** [1]." in answer.answer
    assert "3221225472" not in outside_code(answer.answer)  # only inside the docs' own curl example
    assert answer.citations[0].source == "api/files.md"


def test_restoring_a_deleted_file_names_the_trash_and_the_retention_period(core) -> None:
    answer = ask(core, "How do I restore a deleted file?")
    assert "You can restore it from the trash until the retention period for your plan ends" in answer.answer
    assert answer.citations[0].source == "legal/data-retention.txt"
    assert "delete_file" not in answer.answer


def test_team_plan_price_without_appended_debris(core) -> None:
    answer = ask(core, "How much does the Team plan cost?")
    assert ("The Team plan costs **$8 per user per month billed annually**, or **$10 per user per month billed "
            "monthly**.") in answer.answer
    assert "**Free** plan" not in answer.answer
    assert answer.citations[0].source == "billing/plans.md"


def test_two_factor_steps_stay_a_list_in_the_documents_order(core) -> None:
    answer = ask(core, "How do I turn on two-factor authentication?")
    steps = ["Sign in at https://app.driftwood.example.", "Enter your password to confirm.",
             "Scan the QR code with your authenticator app.", "Enter the 6-digit code that the app shows"]
    positions = [answer.answer.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), answer.answer
    # the page's <ol> reads as numbered steps, as a Markdown procedure does
    assert "1. Sign in at https://app.driftwood.example." in answer.answer
    assert "3. Enter your password to confirm." in answer.answer


def test_ports_come_from_the_connectivity_page(core) -> None:
    answer = ask(core, "Which ports does Driftwood need?")
    assert "443" in answer.answer and answer.citations[0].source == "troubleshooting/connectivity.txt"


@pytest.mark.parametrize("noise", [
    "$(cat /etc/passwd) ... echo $SLACK_BOT_TOKEN",
    "'; DROP TABLE users; --",
    "### ``` 1. 2. 3. ### ```",
    "{{7*7}} ${jndi:ldap://x}",
])
def test_noise_abstains_without_quoting_anything(core, noise: str) -> None:
    answer = core.answers.answer(Question(text=noise))
    assert answer.abstained and answer.answer == ABSTAIN_TEXT and answer.citations == []


@pytest.mark.parametrize("question", [
    "how do I cancel my gym membership",
    "how much is the spotify family plan per month",
    "What is the boiling point of olive oil in Kelvin?",
])
def test_a_question_about_something_the_docs_do_not_cover_abstains(core, question: str) -> None:
    answer = core.answers.answer(Question(text=question))
    assert answer.abstained and answer.answer.startswith(ABSTAIN_TEXT)


def test_one_sentence_that_answers_is_found_though_no_page_as_a_whole_was_close_enough(core) -> None:
    question = "where do the log files live on windows"
    passages = core.answers.retrieve(Question(text=question), [])
    assert not any(p.relevant for p in passages)  # retrieval's page-level gate alone would abstain
    answer = core.answers.answer(Question(text=question))
    assert not answer.abstained and "| Windows | `%LOCALAPPDATA%\\Driftwood\\logs\\` |" in answer.answer
    assert [c.source for c in answer.citations] == ["troubleshooting/sync-stuck.md"]
    assert invented_identifiers(answer.answer, [p.text for p in passages]) == set()
    assert core.answers.answer(Question(text="how do I cancel my gym membership")).abstained  # its closest: 0.56


@pytest.mark.parametrize(("question", "first", "support"), [
    ("Can I use a FAT32 drive for the sync folder on Windows?", "No.",
     "FAT32 and exFAT drives are not supported because they cannot store file attributes that Driftwood relies on [1]."),
    ("Is there any discount for nonprofits?", "Yes.",
     "Registered nonprofits and accredited schools get 50% off the Team and Business plans on annual billing [1]."),
    ("Can I get a refund for a monthly plan?", "No.", "Monthly payments are not refundable [1]."),
])
def test_yes_no_questions_lead_with_the_answer_then_the_sentence_that_states_it(core, question: str, first: str,
                                                                                 support: str) -> None:
    answer = ask(core, question)
    assert yes_no_of(answer.answer) == first.rstrip("."), answer.answer
    assert f"{first}\n\n{support}" in answer.answer, answer.answer  # the verdict's own sentence, right under it
