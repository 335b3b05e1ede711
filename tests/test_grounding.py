"""The pieces behind grounded answers, without models: how passages split into quotable
units, which spans count as identifiers, what framing may say, how free answers are checked."""

from __future__ import annotations

from bot.answer_metrics import garbled, recall, yes_no_of
from bot.composer import Composer, is_yes_no_question
from bot.framing import acceptable_framing
from bot.grounding import content_terms, identifiers, is_noise, missing_identifiers, supports
from bot.passage_units import CODE, FRAGMENT, HEADER, ITEM, LABEL, PRE, ROW, SENTENCE, split_sentences, split_units
from bot.verified_stream import VerifiedStream

PAGE = """Install the CLI:
The `drift` tool ships separately, e.g. on build machines. The current release is 4.2.0. Install it with:

```bash
brew install driftwood-cli
```

1. Open **Settings > Sync**.
2. Click **Pause**.

| Plan | Price |
|---|---|
| Team | $8 |
| Business | $15 |

  Plan        Trash retention     Version history
  ----------  ------------------  ------------------
  Free        7 days              7 days

    drift doctor --network
"""


def test_a_passage_splits_into_whole_sentences_items_code_rows_and_blocks() -> None:
    units = split_units(PAGE, 1)
    assert [u.kind for u in units] == [LABEL, SENTENCE, SENTENCE, SENTENCE, CODE, ITEM, ITEM, ROW, ROW, HEADER, PRE, PRE]
    assert units[1].text == "The `drift` tool ships separately, e.g. on build machines."
    assert units[4].text == "```bash\nbrew install driftwood-cli\n```"
    assert units[5].text == "1. Open **Settings > Sync**." and units[5].block == units[6].block
    assert units[9].text == "| Plan | Price |\n|---|---|"
    assert units[10].text.startswith("```\nPlan        Trash retention     Version history") and units[11].text == "```\ndrift doctor --network\n```"


def test_a_list_item_with_wide_spaces_is_an_item_not_a_preformatted_block_and_splitting_ends() -> None:
    # the Debian handbook's filesystem list: before the fix split_units looped forever on this line
    units = split_units("Directories:\n\n- /run/ :  volatile runtime data  that does not persist across reboots;\n", 1)
    assert [(u.kind, u.text) for u in units] == [
        (LABEL, "Directories:"), (ITEM, "- /run/ :  volatile runtime data  that does not persist across reboots;")]


def test_prose_typed_with_two_spaces_after_each_period_is_sentences_not_a_preformatted_block() -> None:
    # the Debian FAQ's DocBook HTML keeps its source's two spaces after a period: the reply was quoted as a code
    # block (and never read as sentences); aligned columns stay a block
    units = split_units("No.  Packages can be upgraded in place, even in running systems.  Debian has a\n"
                        "start-stop-daemon program that is invoked to stop, then\nrestart running process.", 1)
    assert [(u.kind, u.text) for u in units][:2] == [
        (SENTENCE, "No."), (SENTENCE, "Packages can be upgraded in place, even in running systems.")]
    assert [u.kind for u in split_units("udp        0      0 0.0.0.0:68\ntcp        0      0 0.0.0.0:22", 1)] == [PRE]


def test_tab_indented_lines_are_a_block_and_splitting_ends() -> None:
    # git-doc's git-stash.txt: a tab-indented description; before the fix split_units looped forever
    # on it (adding empty blocks until the process ran out of memory)
    text = ("save [-p|--patch] [<message>]::\n\n\tThis option is deprecated in favour of 'git stash push'.  It\n"
            "\tdiffers from \"stash push\" in that it cannot take pathspec.\n\nlist [<log-options>]::")
    units = split_units(text, 1)
    assert [u.kind for u in units] == [LABEL, PRE, LABEL]
    assert units[1].text == ("```\nThis option is deprecated in favour of 'git stash push'.  It\n"
                             "differs from \"stash push\" in that it cannot take pathspec.\n```")


def test_sentences_break_at_stops_but_not_inside_abbreviations_versions_or_code() -> None:
    assert split_sentences("Use v4.2.0 now. Then run `a. B` here! Done, i.e. Finished.") == [
        "Use v4.2.0 now.", "Then run `a. B` here!", "Done, i.e. Finished."]


def test_identifiers_are_the_spans_a_user_would_copy() -> None:
    found = identifiers('Run `drift sync --watch` or msiexec /qn, open "Link settings" and **Pause**; '
                        "see https://x.example/a, ~/.config/driftwood/config.toml, error DW-1042, 5 GB, $8.")
    assert {"drift sync --watch", "Link settings", "Pause", "https://x.example/a", "~/.config/driftwood/config.toml",
            "DW-1042", "5 GB", "$8"} <= found


def test_missing_identifiers_are_checked_verbatim_up_to_case_and_spacing() -> None:
    passage = "The maximum file size is **5 GB per file**. Run `drift doctor --network`."
    assert missing_identifiers("The limit is 5GB; run `drift doctor --network`.", [passage]) == set()
    assert missing_identifiers("The limit is 3221225472 bytes.", [passage]) == {"3221225472"}
    assert missing_identifiers("Run `drift nuke --all`.", [passage]) == {"drift nuke --all"}


def test_support_needs_the_identifiers_and_the_meaning() -> None:
    passage = "Access tokens expire after 1 hour. Refresh tokens are valid for 60 days."
    assert supports("Access tokens expire after 1 hour [1].", passage)
    assert not supports("Access tokens expire after 2 hours.", passage)
    assert not supports("Bananas are a good source of potassium.", passage)


def test_framing_may_greet_and_sign_off_but_never_state_a_fact() -> None:
    question = "How do I turn on two-factor authentication?"
    team = frozenset(content_terms("Glad to help! Smooth sailing — the Driftwood crew"))  # the team's framing words
    assert acceptable_framing("Here's how to turn on two-factor authentication:", question)
    assert acceptable_framing("Glad to help with two-factor authentication!", question, team)
    assert not acceptable_framing("Glad to help with two-factor authentication!", question)  # not the team's word
    assert not acceptable_framing("Here's how to enable passkeys:", question, team)  # neither the question's
    for bad in ("The maximum file size is 3 GB.", "Use the `drift` command-line tool.", "No, you can't.",
                "### 2.", "1. Open Settings", "To restore a deleted file, use the delete_file_on_demand function.",
                "How do I turn on two-factor authentication?", "It takes two steps:"):
        assert not acceptable_framing(bad, question), bad


def test_noise_is_told_from_questions_that_quote_commands() -> None:
    for noise in ("$(cat /etc/passwd) ... echo $SLACK_BOT_TOKEN", "'; DROP TABLE users; --", "### ``` 1. 2. ###", "", "?!?!"):
        assert is_noise(noise), noise
    for question in ("Why does `drift sync --watch` exit?", "DW-1042?", "2fa setup", "max upload size?",
                     "what does error DW-3117 mean", "How do I use ~/.config/driftwood/config.toml?"):
        assert not is_noise(question), question


class _Passage:
    def __init__(self, text: str, location: str = "Page") -> None:
        self.text, self.location = text, location


def test_the_composer_quotes_the_matching_sentence_with_its_citation_and_a_yes_no_lead() -> None:
    passages = [_Passage("Monthly payments are not refundable. You can cancel at any time."),
                _Passage("Annual plans get a full refund within 14 days of the first payment.")]
    composition = Composer().compose("Can I get a refund on an annual plan?", passages)
    assert composition is not None and composition.yes_no == "Yes"
    assert "Annual plans get a full refund within 14 days of the first payment [2]." in composition.body
    assert is_yes_no_question("Does it run on Linux?") and not is_yes_no_question("How do I install it?")


def test_yes_no_follows_what_a_sentence_states_about_the_thing_asked_not_how_the_question_is_phrased() -> None:
    hooks = [_Passage("Hooks that don't have the executable bit set are ignored.")]
    bundles = [_Passage("A git push into a bundle is not supported."),
               _Passage("Bundles can be used to move history between machines without a network.")]
    push = [_Passage("With --atomic, either all refs are updated or none are. If the server does not support "
                     "atomic pushes the push will fail.")]
    # "are ignored" and "will fail" do not state the asked action (run, fall back): no verdict, the docs speak
    ignored = Composer().compose("Will Git run a hook script without the executable bit?", hooks)
    assert ignored.yes_no is None and ignored.body == "Hooks that don't have the executable bit set are ignored [1]."
    assert Composer().compose("Isn't pushing into a bundle supported?", bundles).yes_no == "No"  # not turned round
    assert Composer().compose("Can I move history between machines with a bundle, without a network?",
                              bundles).yes_no == "Yes"  # the question's own "without" is what is asked
    assert Composer().compose("Does an atomic push fall back to a normal push?", push).yes_no is None
    assert is_yes_no_question("In Amazon RDS, can I exceed my credit balance?")  # after a fronted phrase
    assert not is_yes_no_question("In short, how do I exceed my credit balance?")


def test_a_yes_no_question_after_a_condition_without_its_comma_gets_its_yes_or_no() -> None:
    stopped = [_Passage("When you stop a DB instance it retains its DNS endpoint. Its IP address is released.")]
    composition = Composer().compose("When you stop a DB instance does it retains its DNS endpoint?", stopped)
    assert composition.yes_no == "Yes" and composition.body.startswith("When you stop a DB instance it retains its DNS")
    assert is_yes_no_question("If my trial ends is my data deleted?")
    assert is_yes_no_question("Once I share a folder can the members edit it?")
    assert not is_yes_no_question("When you stop a DB instance what does it keep?")  # a question word asks
    assert not is_yes_no_question("When is the backup taken?")
    assert not is_yes_no_question("When the upload fails how do I retry?")


def test_a_free_answer_keeps_only_supported_sentences_as_it_streams() -> None:
    stream = VerifiedStream(["Sessions expire 24 hours after they are created.",
                             "Run `drift doctor --network` to test the connection."])
    shown = stream.feed("Run `drift nuke --all` to reset everything [2]. Sessions expire 24 ")
    assert shown == ""  # nothing is shown before its line is complete and checked
    shown += stream.feed("hours after they are created [1].\nTest the connection: run `drift doctor --network`.\n")
    shown += stream.finish()
    assert "drift nuke" not in shown and "Sessions expire 24 hours after they are created [1]." in shown
    assert "run `drift doctor --network` [2]." in shown
    assert stream.dropped == ["Run `drift nuke --all` to reset everything [2]."]


def test_answer_metrics_spot_cut_offs_debris_and_yes_no() -> None:
    assert garbled("The Team plan costs $8 [1].") is None
    assert garbled("Steps:\n\n1.") == "list or heading debris"
    assert garbled("Run this:\n```bash\ndrift sync") == "unclosed code block"
    assert garbled("The Team plan costs **$8 per user and then the model went on writing more words") is not None
    assert yes_no_of("Ahoy!\n\nNo.\n\nMonthly payments are not refundable.") == "No"
    assert recall("Access tokens expire after 1 hour.", "Tokens expire after one hour") == 3 / 4  # "one" is not "1"


def test_where_a_chunk_was_cut_nothing_is_quoted() -> None:
    units = split_units("and then it syncs. The limit is 5 GB.\n\n```json\n{\"a\": 1,\n\nmore", 1)
    assert [u.kind for u in units] == [FRAGMENT, SENTENCE]  # the code block cut open is left out
    assert split_units("Use the API. It returns the", 1)[-1].kind == FRAGMENT
    empty_bold = split_units("You can bring it online.\n\n****\n\n| SQL Server | RDS |\n| --- | --- |\n| SET ONLINE | rds_set |", 1)
    assert [u.text for u in empty_bold][:2] == ["You can bring it online.", "| SET ONLINE | rds_set |"]  # no "****"
    assert garbled("You can bring it online [1].\n\n**** [1]\n\nThe end [1].") == "empty markup"
    assert garbled("Regions:\n\n+ US East (Ohio), us-east-2\n+ EU (Ireland), eu-west-1 with a long tail of words [1]") is None
