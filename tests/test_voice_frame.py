"""A voice's frame is the team's own greeting and sign-off, learned from its example replies
(no word list of ours) and used exactly as written: one dev voice of each shape, the edge
cases of the rule, and the lead-in that the model writes inside that frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.framing import Framer
from bot.voice_frame import VoiceFrame, learn_frame
from tests.fakes import ScriptedGenerator

VOICES = Path(__file__).parent / "benchmarks" / "data" / "voices"


def replies(name: str) -> list[str]:
    return [json.loads(line)["answer"] for line in (VOICES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


# (voice, its greetings most common first, its sign-off), as learned from all its replies
SHAPES = [
    ("casual_emoji", ("Hey hey! 👋", "Hiya! 🙌✨", "Hey there, friend! 😄"), "Happy watching! 📺 — The Streamly Crew"),
    ("formal_signature", ("Dear customer,", "Good afternoon,"),
     "Kind regards,\nMaria Keller\nCustomer Care · Northwind Bank"),
    ("terse", (), ""),
    ("spanish_greeting", ("¡Hola! 👋", "¡Buenas!"), "¡Saludos! — Equipo de Soporte"),
    ("product_signoff", (), "Happy note-taking with Lumen Notes ✍️"),
]


@pytest.mark.parametrize(("voice", "greetings", "sign_off"), SHAPES)
def test_each_shape_of_voice_learns_its_exact_frame(voice: str, greetings: tuple[str, ...], sign_off: str) -> None:
    frame = learn_frame(replies(voice))
    assert frame.greetings == greetings
    assert frame.sign_off == sign_off


def test_the_full_sign_off_most_replies_carry_wins_over_its_shorter_form() -> None:
    body = ["Open Settings and choose Sync [1].", "Uploads resume on their own [1].", "Choose Export [2]."]
    signed = [f"Hi! 👋\n\n{b}\n\nHappy watching! 📺 — The Streamly Crew" for b in body * 2]
    short = [f"Hi! 👋\n\n{b}\n\nHappy watching!" for b in body]
    frame = learn_frame(signed + short)
    assert frame.sign_off == "Happy watching! 📺 — The Streamly Crew"
    assert frame.signed == round(6 / 9, 4)


def test_a_signature_block_keeps_its_line_breaks_and_is_compared_on_whitespace_only() -> None:
    spaced = ["Dear customer,\n\nThe limit is 5 GB [1].\n\nKind  regards,\nMaria Keller \nNorthwind Bank",
              "Dear customer,\n\nChoose Export [1].\n\nKind regards,\n  Maria Keller\nNorthwind Bank",
              "Dear customer,\n\nOpen Billing [1].\n\nKind regards,\nMaria Keller\nNorthwind Bank"]
    frame = learn_frame(spaced)
    assert frame.sign_off.splitlines()[0].split() == ["Kind", "regards,"]
    assert [line.strip() for line in frame.sign_off.splitlines()] == ["Kind  regards,", "Maria Keller", "Northwind Bank"]
    assert frame.greetings == ("Dear customer,",)


def test_a_voice_without_shared_lines_gets_no_frame_and_says_why() -> None:
    frame = learn_frame(replies("terse"))
    assert frame.greetings == () and frame.sign_off == ""
    assert frame.summary() == ("frame: none found, because no opening line is shared by 50% of the 42 replies "
                               "(they open with their facts); no closing line is shared by 30% of the 42 replies "
                               "(they end with their facts)")
    assert learn_frame(["Hi!\n\nA [1].", "Hi!\n\nB [1]."]).reasons == ("only 2 example replies (a frame needs 3)",)


def test_a_verdict_or_a_cited_line_never_becomes_a_frame_however_often_it_is_written() -> None:
    frame = learn_frame([f"Yes.\n\nIt syncs {n} files [1].\n\nSee the docs [1]." for n in range(10)])
    assert frame.greetings == () and frame.sign_off == ""
    casual = learn_frame([f"No worries! 😊\n\nIt syncs {n} files [1].\n\nNo problem — the crew" for n in range(5)])
    assert casual.greetings == ("No worries! 😊",) and casual.sign_off == "No problem — the crew"


def test_the_summary_names_the_frame_and_its_variants() -> None:
    frame = learn_frame(replies("casual_emoji"))
    assert frame.summary() == ("greeting: 'Hey hey! 👋' (+2 more: 'Hiya! 🙌✨', 'Hey there, friend! 😄') in 100% of 44 "
                               "replies, sign-off: 'Happy watching! 📺 — The Streamly Crew' in 84%")
    assert VoiceFrame.from_dict(json.loads(json.dumps(frame.to_dict()))) == frame


class Leads(ScriptedGenerator):
    """A voice whose first line above the facts is `reply`."""

    def stream(self, messages, max_new_tokens=None, voice=None):
        self.prompts.append(list(messages))
        yield self.reply + "\n\nmore the voice would write"


QUESTION = "How do I share a folder?"
FACTS = ["Open the folder and choose Share [1]."]


def lead(model_line: str, voice: str = "casual_emoji") -> tuple[str, Leads]:
    generator = Leads(model_line)
    framer = Framer(generator, lambda name: learn_frame(replies(name)))
    return framer.lead_in(QUESTION, FACTS[0], [], voice, FACTS, voice_name=voice), generator


def test_the_greeting_the_model_picks_is_used_as_the_team_writes_it() -> None:
    assert lead("Hiya!   🙌✨")[0] == "Hiya! 🙌✨"
    assert lead("Hiya! 🙌✨ Here's how to share a folder:")[0] == "Hiya! 🙌✨\n\nHere's how to share a folder:"
    assert lead("Hiya! 🙌✨ Run `drift share` first.")[0] == "Hiya! 🙌✨"


def test_a_model_line_that_frames_the_question_follows_the_team_greeting_names_and_emoji_included() -> None:
    assert lead("Here's how to share a folder with the Streamly Crew 📺:")[0] == (
        "Hey hey! 👋\n\nHere's how to share a folder with the Streamly Crew 📺:")


@pytest.mark.parametrize("model_line", [
    "Run `drift share --all` to share a folder.",  # an identifier from nowhere
    "You can share a folder up to 3 times.",  # a number
    "No, you can't share a folder.",  # a verdict
    "Here's how to share a folder with the Acme Crew:",  # a name that is neither the team's nor the docs'
    "Hey there, buddy!",  # a greeting of its own, not the team's
])
def test_a_model_line_that_states_anything_leaves_only_the_team_greeting(model_line: str) -> None:
    assert lead(model_line)[0] == "Hey hey! 👋"


def test_a_voice_that_opens_with_its_facts_gets_no_lead_in_and_costs_no_generation() -> None:
    text, generator = lead("Hello there, friend!", voice="terse")
    assert text == "" and generator.prompts == []
    assert lead("Hello there!", voice="product_signoff")[0] == ""  # a sign-off but no greeting
    assert Framer(Leads("Hi!"), lambda name: learn_frame(replies(name))).sign_off("product_signoff") == (
        "Happy note-taking with Lumen Notes ✍️")


def test_eval_judges_an_answer_without_counting_the_team_frame_as_invented_or_cut_off() -> None:
    from bot.evaluation import AnswerQuality, QAItem
    from bot.types import Answer

    frame = learn_frame(replies("product_signoff"))
    answer = Answer(answer="Open the folder and choose Share [1].\n\nHappy note-taking with Lumen Notes ✍️",
                    abstained=False, context="[1] Sharing\nOpen the folder and choose Share.")
    judged, unframed = AnswerQuality(), AnswerQuality()
    judged.add(QAItem("How do I share?", "Choose Share.", ()), answer, frame)
    unframed.add(QAItem("How do I share?", "Choose Share.", ()), answer)
    assert judged.report()["garbled"] == 0.0 and judged.report()["invented_identifiers"] == 0.0
    assert unframed.report()["garbled"] == 1.0  # without knowing the frame, the emoji ending reads as cut off


def test_voice_eval_counts_the_frame_in_answers_against_the_same_answers_without_the_voice() -> None:
    from adapters_lora.dataset import ContextPassage, VoiceExample
    from bot.app.voice_frame_eval import summarise
    from bot.types import Answer

    frame = learn_frame(replies("casual_emoji"))
    example = VoiceExample(1, "How big can a file be?", "Files up to **5 GB** upload [1].",
                           (ContextPassage("Limits", "Files up to **5 GB** upload."),))
    plain = Answer(answer="Files up to **5 GB** upload [1].", abstained=False, timings_ms={"generate": 0.0})

    def voiced(text: str) -> Answer:
        return Answer(answer=text, abstained=False, context="[1] Limits\nFiles up to **5 GB** upload.",
                      timings_ms={"generate": 900.0})

    rows = [(example, voiced(f"Hiya! 🙌✨\n\n{plain.answer}\n\n{frame.sign_off}"), plain),
            (example, voiced(f"Hey hey! 👋\n\nHere's the file size:\n\n{plain.answer}\n\nHappy watching!"), plain),
            (example, voiced(f"Hey hey! 👋\n\nFiles up to **50 GB** upload [1].\n\n{frame.sign_off}"), plain)]
    report = summarise(frame, rows)
    assert report["greeting_rate"] == 1.0 and report["sign_off_rate"] == round(2 / 3, 4)  # one cut to its start
    assert report["fact_recall"] == {"voiced": round(2 / 3, 4), "plain": 1.0}  # "5 GB" lost once
    assert report["invented_identifiers"] == 1 and report["unframed_changes"] == 2 and report["model_lines"] == 1
    assert report["lead_in_ms"] == 900.0


def test_a_voice_trained_before_frames_were_saved_learns_its_frame_from_its_dataset(tmp_path: Path) -> None:
    from bot.app.config import load_settings
    from bot.app.voices import Voices

    voices = Voices(load_settings(data_dir=tmp_path))
    for name, dataset in (("older", VOICES / "spanish_greeting.jsonl"), ("orphan", tmp_path / "gone.jsonl")):
        folder = voices.registry.root / name
        folder.mkdir(parents=True)
        (folder / "voice.json").write_text(json.dumps({"name": name, "dataset": {"path": str(dataset)},
                                                       "training": {"held_out_fraction": 0.1, "seed": 1234}}))
    older = voices.frame("older")
    assert older is not None and older.greetings == ("¡Hola! 👋", "¡Buenas!")
    assert older.sign_off == "¡Saludos! — Equipo de Soporte" and older.replies == 41  # its training split
    assert voices.frame("orphan") is None and voices.frame("unknown") is None


@pytest.mark.parametrize(("voice", "opens", "closes"), [
    ("casual_emoji", "Hiya! 🙌✨\n\n", "\n\nHappy watching! 📺 — The Streamly Crew"),
    ("formal_signature", "Dear customer,\n\n", "\n\nKind regards,\nMaria Keller\nCustomer Care · Northwind Bank"),
    ("terse", "", ""),
    ("spanish_greeting", "¡Hola! 👋\n\n", "\n\n¡Saludos! — Equipo de Soporte"),
    ("product_signoff", "", "\n\nHappy note-taking with Lumen Notes ✍️"),
])
def test_answers_in_each_shape_of_voice_carry_its_frame_verbatim_around_the_same_facts(
        core, voice: str, opens: str, closes: str) -> None:
    from bot.answering import AnswerService
    from bot.types import Question

    question = Question(text="How do I share a folder with someone outside my team?")
    plain = AnswerService(core.knowledge.retriever, Leads("Hiya! 🙌✨"), composer=core.answers.composer,
                          active_voice=lambda: None).answer(question)
    model = Leads("Hiya! 🙌✨")  # a model that opens with one of the casual voice's greetings
    voiced = AnswerService(core.knowledge.retriever, model, composer=core.answers.composer,
                           active_voice=lambda: voice, voice_frames=lambda name: learn_frame(replies(name))
                           ).answer(question)
    assert voiced.answer == opens + plain.answer + closes
    assert len(model.prompts) == (1 if opens else 0)  # a voice that opens with its facts costs no generation


def test_voice_check_says_which_frame_training_would_learn(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from bot.app.cli import cli

    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "voice", "check",
                                      str(VOICES / "formal_signature.jsonl")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "Training would learn: greeting: 'Dear customer,' (+1 more: 'Good afternoon,') in 84% of 38 replies, "
        "sign-off: 'Kind regards,\\nMaria Keller\\nCustomer Care · Northwind Bank' in 100%")


def test_a_greeting_and_sign_off_written_on_the_same_line_as_the_facts_are_found_too() -> None:
    facts = ["Open the folder and choose Share [1].", "Uploads resume on their own [1].", "Choose Export [2].",
             "Invoices are in Billing [1]."]
    frame = learn_frame([f"Hey there! 👋 {fact} Happy watching! 📺 — The Streamly Crew" for fact in facts])
    assert frame.greetings == ("Hey there! 👋",)
    assert frame.sign_off == "Happy watching! 📺 — The Streamly Crew"
    assert learn_frame(replies("terse")).greetings == ()  # first sentences of facts are not shared
