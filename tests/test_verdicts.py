"""A "Yes."/"No." only where one quoted sentence states it about the thing asked: real passages
(the Debian handbook as Debian ships it, and a TV manual's boilerplate), the bundled embedder,
the composer's public entry point."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.answer_metrics import invented_identifiers, yes_no_of
from bot.composer import Composer
from bot.passage_units import split_units
from bot.verdicts import (VerdictFinder, _described, _list_lead, _pointer_start, _split_question, _subject_modifier,
                          asked_actions, asked_names, asked_participles, asked_restrictions, clauses, is_negated)
from knowledge.embedding import Embedder


@dataclass
class Passage:
    text: str
    location: str = "Page"


@pytest.fixture(scope="module")
def composer(embedder: Embedder) -> Composer:
    return Composer(embedder)


WEBMIN = Passage("Webmin is used through a web interface, but it does not require Apache to be installed. "
                 "Essentially, this software has its own integrated mini web server. This server listens by "
                 "default on port 10000 and accepts secure HTTP connections.",
                 "Administration Interfaces > Administrating on a Web Interface: webmin")
RESIZE = Passage("Not all filesystems can be resized online; resizing a volume can therefore require unmounting "
                 "the filesystem first and remounting it afterwards. Of course, if one wants to shrink the space "
                 "allocated to an LV, the filesystem must be shrunk first.\n\nThe reiserfs filesystem allows online "
                 "resizing in both directions. The venerable ext2 allows neither, and always requires unmounting.",
                 "Advanced Administration > LVM > Resizing")
TV_SOUND = Passage("Select Sound Output to choose where the TV plays its sound. You will hear no sound from the TV "
                   "speakers if you select Bluetooth Speaker List. This function may not be supported depending "
                   "on the model.", "Sound > Sound Output")
TV_HEADPHONES = Passage("To connect Bluetooth headphones, open Sound Output, select Bluetooth Speaker List and pick "
                        "the headphones from the list.", "Sound > Bluetooth headphones")


def test_a_sentence_denying_the_asked_action_gives_no_quoted_right_under_it(composer: Composer) -> None:
    composition = composer.compose("Does Webmin need Apache to be installed?", [WEBMIN])
    assert composition.yes_no == "No"
    assert composition.body.startswith("Webmin is used through a web interface, but it does not require Apache "
                                       "to be installed [1].\n\n")
    assert composition.pieces[0] == (1, "Webmin is used through a web interface, but it does not require Apache "
                                        "to be installed.")


def test_an_affirming_sentence_gives_yes_though_another_limits_other_subjects(composer: Composer) -> None:
    # "Not all filesystems can be resized online" limits filesystems in general: no "No" for reiserfs
    composition = composer.compose("Can a reiserfs filesystem be resized online?", [RESIZE])
    assert composition.yes_no == "Yes"
    assert composition.body.startswith("The reiserfs filesystem allows online resizing in both directions [1].")


def test_boilerplate_limitations_give_no_verdict_the_answer_says_what_the_docs_say(composer: Composer) -> None:
    for question in ("Can I use Bluetooth headphones with the TV?", "Can I play the TV sound through Bluetooth?"):
        composition = composer.compose(question, [TV_SOUND])
        assert composition is not None and composition.yes_no is None, (question, composition)
        assert "Bluetooth Speaker List" in composition.body
    # the page that shows how: its instruction is what answers, never the other page's boilerplate
    shown = composer.compose("Can I use Bluetooth headphones with the TV?", [TV_SOUND, TV_HEADPHONES])
    assert shown.yes_no == "Yes" and shown.body.startswith("To connect Bluetooth headphones, open Sound Output")


def test_a_limitation_true_only_under_a_condition_the_question_does_not_set_is_no_answer(composer: Composer) -> None:
    passage = Passage("Upgrading from even older Debian systems directly is not supported. Unlike other "
                      "distributions, Debian allows updating a system from one version to the next without having "
                      "to reinstall the system.", "Installation")
    assert composer.compose("Can I move to the next Debian version without reinstalling?", [passage]).yes_no == "Yes"
    assert composer.compose("Is upgrading directly from an older Debian release supported?", [passage]).yes_no == "No"
    sound = composer.compose("Will I hear sound from the TV speakers?", [TV_SOUND])  # only "if you select ..."
    assert sound.yes_no is None


def test_when_the_docs_say_both_about_the_thing_asked_there_is_no_verdict(composer: Composer) -> None:
    both = Passage("RAID can be used as a backup of your disks. RAID systems are not backup mechanisms.")
    assert composer.compose("Is RAID a backup?", [both]).yes_no is None


def test_clauses_keep_the_condition_apart_and_the_negation_to_its_own_clause() -> None:
    found = clauses("By default, if SLAAC is activated in your network, the kernel will automatically find IPv6 "
                    "routers (a restart of cron does not trigger it).")
    assert [(c.main, c.condition) for c in found] == [
        ("By default,  the kernel will automatically find IPv6 routers", "if  SLAAC is activated in your network"),
        ("a restart of cron does not trigger it", "")]
    assert [c.main for c in clauses("The latter is important since the FTP protocol doesn't use encryption.")] == [
        "The latter is important", "the FTP protocol doesn't use encryption"]
    assert is_negated("apt-get doesn't know the full-upgrade command") and is_negated("it cannot be deleted")
    assert not is_negated("not only the kernel but also the modules are signed")


def test_a_how_to_gets_its_steps_and_the_answer_leads_one_paragraph_one_citation(composer: Composer) -> None:
    mac = Passage("Driftwood runs on macOS 12 or later and keeps your files in sync in the background. It uses about "
                  "200 MB of disk space.\n\nTo install Driftwood on a Mac:\n\n1. Download DriftwoodSetup.dmg from the "
                  "downloads page.\n2. Open the file and drag Driftwood to Applications.\n3. Start Driftwood and sign "
                  "in.", "Install on macOS")
    assert composer.compose("How do I install it on a Mac?", [mac]).body == (
        "To install Driftwood on a Mac [1]:\n\n1. Download DriftwoodSetup.dmg from the downloads page.\n"
        "2. Open the file and drag Driftwood to Applications.\n3. Start Driftwood and sign in.")
    # the Debian handbook's answer on shared memory: the sentence that answers leads, its follow-up joins
    # it in one paragraph with one citation, the sidebar title between paragraphs is not quoted
    shm = Passage("The kernel offers several ways for processes to talk.\n\nBACK TO BASICS Shared memory\n\n"
                  "Shared memory lets two processes read and write the same region of RAM. It is the fastest way "
                  "to exchange data, since nothing is copied.\n\nThe ipcs command lists the shared memory segments "
                  "in use.", "Unix services > Inter-process communication")
    body = composer.compose("What is shared memory?", [shm]).body
    assert body.startswith("Shared memory lets two processes read and write the same region of RAM. It is the "
                           "fastest way to exchange data, since nothing is copied."), body
    assert body.count("[1]") == 1 and "BACK TO BASICS" not in body and "several ways" not in body


def test_labelled_lines_read_as_a_list_and_links_keep_their_text(composer: Composer) -> None:
    modes = Passage("Picture Mode settings:\n\nStandard: the default mode for most rooms.\nMovie: warmer colours for "
                    "films in a dark room.\nDynamic: brighter picture for bright rooms.\n\nTo add an email account, "
                    "see [Accounts](accounts.md).", "Picture > Picture Mode")
    body = composer.compose("Which picture modes are there?", [modes]).body
    assert "- Standard: the default mode for most rooms.\n- Movie: warmer colours for films in a dark room.\n" \
           "- Dynamic: brighter picture for bright rooms." in body, body
    link = composer.compose("How do I add an email account?", [modes]).body
    assert "To add an email account, see Accounts [1]." in link, link


def test_a_bold_label_holding_a_link_still_verifies_against_its_passage(composer: Composer) -> None:
    # aws-docs-qa (Forecast quotas): the link inside the bold label reads as its text, and the
    # piece that is verified is the passage's own text, so the answer is not withdrawn
    passage = Passage("**Quotas Imposed by the [CreatePredictor](API_CreatePredictor.md) API**\n\nThe maximum number "
                      "of columns in an item metadata dataset is 10.", "Guidelines and Quotas")
    composition = composer.compose("What is the maximum number of columns in an item metadata dataset?", [passage])
    assert "The maximum number of columns in an item metadata dataset is 10 [1]." in composition.body
    assert all(piece in passage.text for _, piece in composition.pieces)
    assert invented_identifiers(composition.body, [passage.text]) == set()  # a bold label is quoted as the page has it
    linked = Passage("To add an email account, see [Accounts](accounts.md).")
    assert composer.compose("How do I add an email account?", [linked]).body == "To add an email account, see Accounts [1]."


# git-doc's git-rebase.txt (--rebase-merges) and git-stash.txt (--all), as Debian's git-doc ships them
REBASE = Passage("By default, a rebase will simply drop merge commits from the todo list, and put the rebased commits "
                 "into a single, linear branch. With `--rebase-merges`, the rebase will instead try to preserve the "
                 "branching structure within the commits that are to be rebased, by recreating the merge commits.",
                 "git-rebase > OPTIONS > --rebase-merges")
STASH_ALL = Passage("This option is only valid for `push` and `save` commands.\n\nAll ignored and untracked files are "
                    "also stashed and then cleaned up with `git clean`.", "git-stash > OPTIONS > --all")


def test_a_sentence_affirming_another_everyday_verb_gives_no_yes(composer: Composer) -> None:
    # "drop" is not "keep": the subject and object match, the asked action does not (it was a false "Yes.")
    kept = composer.compose("Does git rebase keep merge commits by default?", [REBASE])
    assert kept.yes_no is None
    assert kept.body.startswith("By default, a rebase will simply drop merge commits from the todo list")
    dropped = composer.compose("Does git rebase drop merge commits by default?", [REBASE])
    assert dropped.yes_no == "Yes"
    assert dropped.pieces[0] == (1, "By default, a rebase will simply drop merge commits from the todo list, and put "
                                    "the rebased commits into a single, linear branch.")


def test_the_asked_everyday_verb_is_the_action_unless_the_user_is_its_subject_or_an_infinitive_follows() -> None:
    assert asked_actions("Does git describe use lightweight tags") == ("use",)
    assert asked_actions("Does git rebase keep merge commits") == ("keep",)
    assert asked_actions("Can I use Bluetooth headphones with the TV") == ()
    assert asked_actions("Can I use git diff to compare two files") == ()
    assert asked_actions("Does Webmin need Apache to be installed") == ()


def test_a_negating_prefix_in_front_of_a_noun_is_no_denial(composer: Composer) -> None:
    # "untracked files are also stashed" affirms; read as "not tracked" it answered "No." to the stash question
    composition = composer.compose("Can git stash also save my ignored files, not just tracked changes?", [STASH_ALL])
    assert composition.yes_no != "No"
    assert "All ignored and untracked files are also stashed and then cleaned up with `git clean` [1]." in composition.body


APT_PATTERNS = Passage("Patterns allow you to specify complex search queries to select the packages you want to install "
                       "or show. For example, we can use apt list ?automatic to list all the packages automatically "
                       "installed. To find packages automatically installed no longer depended upon by manually "
                       "installed packages the pattern ?garbage can be used.",
                       "Maintenance and Updates: The APT Tools > APT Patterns")
DEBSUMS = Passage("Note that this example uses the grep-status command from the dctrl-tools package, which is not "
                  "installed by default. debsums can be run frequently as a cronjob setting CRON_CHECK in "
                  "/etc/default/debsums.", "Supervision > Auditing Packages with debsums")
MAN_SECTIONS = Passage("It is possible to specify the section of the manual page that you are looking for: to view "
                       "the documentation for the read system call, you would type man 2 read. When no section is "
                       "explicitly specified, the first section that has a manual page with the requested name will "
                       "be shown.", "Solving Problems > Manual Pages")


def test_a_sentence_opening_with_a_purpose_states_nothing_outside_it(composer: Composer) -> None:
    # "To find packages ... no longer depended upon ..., ?garbage can be used" was read as "No." to whether
    # apt can show the automatically installed packages, which the sentence before it says it can
    composition = composer.compose("Can apt show me which packages were installed automatically?", [APT_PATTERNS])
    assert composition.yes_no != "No"
    assert clauses("To find packages no longer needed, the pattern ?garbage can be used.")[0].condition == \
        "To find packages no longer needed"


def test_a_clause_without_the_asked_participle_is_no_answer(composer: Composer) -> None:
    # "this example uses the grep-status command" says nothing of whether it is installed (it was a false "Yes.")
    composition = composer.compose("Is the grep-status command installed by default?", [DEBSUMS])
    assert composition.yes_no != "Yes"
    assert asked_participles("Is the grep-status command installed by default") == ("installed",)
    assert asked_participles("Are new modules signed automatically") == ("signed",)
    assert asked_participles("Can debsums check installed files against reference checksums") == ()


def test_a_yes_must_state_the_restriction_asked(composer: Composer) -> None:
    # that man takes a section number does not make it "the only way" (it was a false "Yes.")
    composition = composer.compose("Is the man command the only way to read manual pages?", [MAN_SECTIONS])
    assert composition.yes_no is None
    assert composition.body.startswith("It is possible to specify the section of the manual page")
    composition = composer.compose("Can I specify the section of the manual page I am looking for?", [MAN_SECTIONS])
    assert composition.yes_no == "Yes"


STORAGE_LIMITS = Passage("The appliance also supports tape storage for older backups. We recommend disks for any new "
                         "backup set. The following are some limitations for tape storage:\n\n"
                         "- Doesn't support incremental restores.\n"
                         "- Doesn't support encryption at rest.\n"
                         "- Limited to a maximum size of 3 TiB.", "Backup appliance > Storage types > Tape storage")
ZONES = Passage("For instructions on registering the instances of an edge zone with a target group, see "
                "[Registering targets](targets.html).", "Load balancers > Edge zones")


def test_a_list_item_opening_with_its_verb_speaks_of_what_its_list_introduces(composer: Composer) -> None:
    # "tape storage ... supports" is no "Yes." to incremental restores: the limitation list under it says "No"
    composition = composer.compose("Does the appliance's tape storage support incremental restores?", [STORAGE_LIMITS])
    assert composition.yes_no == "No"
    assert composition.pieces[0] == (1, "- Doesn't support incremental restores.")


def test_a_cross_reference_states_nothing_itself(composer: Composer) -> None:
    # it was a "Yes." to whether Lambda functions can be targets in such a zone (they cannot)
    composition = composer.compose("Can I register instances of an edge zone with a target group?", [ZONES])
    assert composition.yes_no is None
    assert composition.body.startswith("For instructions on registering the instances of an edge zone")


APACHE_SNI = Passage("The Apache server supports an SSL protocol extension called Server Name Indication (SNI). This "
                     "extension allows the browser to send the hostname of the web server during the establishment of "
                     "the SSL connection.", "Network Services > Web Server (HTTP) > Configuring Virtual Hosts")


def test_a_short_name_in_brackets_belongs_to_the_clause_it_follows(composer: Composer) -> None:
    composition = composer.compose("Does Apache support SNI?", [APACHE_SNI])
    assert composition.yes_no == "Yes"
    assert composition.pieces[0] == (1, "The Apache server supports an SSL protocol extension called Server Name "
                                        "Indication (SNI).")
    assert [c.main for c in clauses("X is kept (not installed by default).")] == ["X is kept", "not installed by default"]


BUILD_DEP = Passage("apt-get allows installing all packages mentioned in the Build-Depends fields of a source package "
                    "available in a distribution mentioned in a deb-src line of the /etc/apt/sources.list file. This "
                    "is a simple matter of running the apt-get build-dep source-package command.",
                    "Debian Packaging System > Source Packages > Compilation of a Source Package")


def test_a_hedge_word_inside_a_name_hedges_nothing(composer: Composer) -> None:
    # "Build-Depends" is a field's name, not "it depends"
    composition = composer.compose("Can apt-get install the build dependencies of a source package?", [BUILD_DEP])
    assert composition.yes_no == "Yes"
    assert composition.pieces[0][1].startswith("apt-get allows installing all packages mentioned in the Build-Depends")


MERGE_STRATEGIES = Passage("With the strategies that use 3-way merge (including the default, ort), if a change is made "
                           "on both branches, but later reverted on one of the branches, that change will be present in "
                           "the merged result; some people find this behavior confusing. It occurs because only the "
                           "heads and the merge base are considered when performing a merge, not the individual "
                           "commits.", "git-merge(1) Manual Page > MERGE STRATEGIES")
FAULTY_MERGE = Passage("Reverting a regular commit just effectively undoes what that commit did, and is fairly "
                       "straightforward. But reverting a merge commit also undoes the data that the commit changed, but "
                       "it does absolutely nothing to the effects on history that the merge had.\n\nSo the merge will "
                       "still exist, and it will still be seen as joining the two branches together, and future merges "
                       "will see that merge as the last shared state - and the revert that reverted the merge brought "
                       "in will not affect that at all.", "How to revert a faulty merge")


def test_a_denial_outweighed_by_a_sentence_saying_the_asked_action_in_other_words_is_no_verdict(
        composer: Composer) -> None:
    # "that change will be present in the merged result" answers "keep" in other words: the weaker "will not
    # affect that" elsewhere was a false "No."
    question = "Will merging two branches keep a change that I made on both but reverted on only one of them?"
    composition = composer.compose(question, [MERGE_STRATEGIES, FAULTY_MERGE])
    assert composition.yes_no is None
    assert composition.body.startswith("With the strategies that use 3-way merge")


TARGETS = Passage("These supported address blocks enable you to register the following with a target group: "
                  "instances in a peered network, resources addressable by IP address and port, and on-premises "
                  "servers linked through a VPN connection.", "Load balancers > Target groups > Target type")


LAMBDA_EVENTS = Passage("A Lambda function behind a load balancer receives each request as a JSON event. The Lambda "
                        "function returns the status code, headers and body of the response. Lambda functions are "
                        "billed per request, and a Lambda function's logs go to its own log group.",
                        "Load balancers > Lambda functions")


def test_a_sentence_not_naming_the_thing_asked_about_gives_no_verdict(composer: Composer) -> None:
    # the target-type sentence holds "register", "target" and "group", and says nothing of Lambda
    composition = composer.compose("Can I register Lambda functions with a target group?", [LAMBDA_EVENTS, TARGETS])
    assert composition.yes_no is None
    assert asked_names("Can I use AWS Lambda as a target group") == ("lambda",)
    assert asked_names("Is Apache OpenOffice available") == ("apache", "openoffice")
    assert asked_names("Does git rebase keep merge commits") == ()


def test_a_sentence_about_the_pages_topic_without_the_telling_word_gives_no_verdict(composer: Composer) -> None:
    # every sentence here names Lambda functions; "targets" is what tells the asked thing apart, and the sentence
    # about billing and log groups lacks it (its "log group" matched the question's "target group"): a false "Yes."
    composition = composer.compose("Can I use Lambda functions as targets in a target group?", [LAMBDA_EVENTS, TARGETS])
    assert composition.yes_no is None
    assert composer.compose("Are Lambda functions billed per request?", [LAMBDA_EVENTS, TARGETS]).yes_no == "Yes"


SYMLINKS = Passage("A symbolic link is a pointer to another file. When you access it, the file to which it points is "
                   "opened. Removal of the link will not cause deletion of the file to which it points. Likewise, it "
                   "does not have its own set of permissions, but rather retains the permissions of its target. "
                   "Finally, it can point to any type of file: directories, special files (sockets, named pipes, "
                   "device files, etc.), even other symbolic links.",
                   "Basic Configuration > Timezone > BACK TO BASICS Symbolic links")


def test_what_a_pronoun_clause_says_must_be_in_it_the_heading_names_only_its_subject(composer: Composer) -> None:
    # "Finally, it can point to any type of file" was a false "Yes." (symbolic links from the heading, "permissions"
    # from the sentence before); "Likewise, it does not have ..." opens with an adverb and still refers back
    composition = composer.compose("Does a symbolic link have its own permissions?", [SYMLINKS])
    assert composition.yes_no is None
    assert "Likewise, it does not have its own set of permissions" in composition.body


BIOS = ("Starting the installer from Microsoft Windows: It is now possible to start the installer directly from Microsoft "
        "Windows without the need to change BIOS settings.")
INSTALLER = "The Debian GNU/Linux FAQ > What's new in the next release? > Improvements in the Debian Installer"


@pytest.mark.parametrize("question, text, location, verdict", [
    # a clause split off after "which" has its own subject, not the heading's (it was a false "No.")
    ("Is grep-status installed by default?", "This example uses the dctrl-tools package, which is not installed by "
     "default.", "Supervision > The grep-status command", None),
    # what a sentence says before "see ..." still stands, and still contradicts
    ("Does Foo keep the cache?", "Foo is not able to keep the cache, see the limitations. Foo can keep the cache "
     "files.", "Foo", None),
    # a purpose only limits where the rest applies: its words are not what the sentence says
    ("Will I lose data when I reinstall?", "To avoid losing data when you reinstall, back up your profile first.",
     "Reinstall", None),
    # "Otherwise, ..." is a condition the question does not set
    ("Does the tool keep the config?", "If you pass --reset, the tool rewrites the settings file. Otherwise, it does "
     "not keep the config.", "Tool", None),
    # a name is matched whole: JavaScript is not Java
    ("Does Java support tail calls?", "JavaScript supports tail calls in strict mode.", "Languages", None),
    # a "Yes" does not hold for what the sentence excepts
    ("Does Apache support HTTP/3 on Windows?", "Apache supports HTTP/3 (except on Windows).", "Apache", None),
    ("Does Apache support HTTP/3 on Linux?", "Apache supports HTTP/3 on Linux (except on Windows).", "Apache", "Yes"),
    # a file type named by its extension is what was asked: python3-doc's Windows FAQ answers for .pyd, not .so
    ("Is a .so file the same as a DLL?", "Yes, .pyd files are dll's, but there are a few differences.",
     "Python on Windows FAQ > Is a *.pyd file the same as a DLL?", None),
    ("Is a .pyd file a DLL?", ".pyd files are DLLs, with a few differences.", "Python on Windows FAQ", "Yes"),
    # "would" says what holds in a case imagined, not what is so (python3-doc's general FAQ)
    ("Can I use Python commercially?", "You can do anything you want with the source. We would still like to know "
     "about all commercial use of Python, of course.", "General Python FAQ > Are there copyright restrictions?", None),
    ("Is RAID a backup?", "RAID systems are not backup mechanisms.", "RAID > CAUTION RAID is not Backup", "No"),
    # a participle phrase describing the subject asserts nothing of it (test_a_participle_phrase_...), but where
    # the question describes its subject the same way, the descriptions meet (the handbook's DMARC
    # sentence), and a fronted phrase before a comma is no part of the subject (the handbook's LXC sentence)
    ("Does Postfix reject emails that fail DMARC validation by default?", "By default, emails failing the DMARC "
     "validation are not rejected but flagged, by adding an appropriate header field.", "Postfix > DMARC", "No"),
    ("Do LXC containers get a root password by default?", "In LXC releases following 2.0.8, root passwords are not "
     "set by default.", "Virtualization > LXC", "No"),
    # what a sentence says is done "without" is not affirmed by it (the Debian FAQ's installer sentence was a false
    # "Yes."); what it affirms still is, and a question asking "without" itself meets it
    ("Do I have to change BIOS settings to launch the Debian installer from Windows?", BIOS, INSTALLER, None),
    ("Can I start the installer directly from Windows?", BIOS, INSTALLER, "Yes"),
    ("Can I start the installer from Windows without changing BIOS settings?", BIOS, INSTALLER, "Yes"),
    # a negator scoping what is absent ("with no need to ...", ", no downtime needed") or a clause of its own after
    # ", and there is no need ..." denies nothing asked: each was a false "No." to a question the sentence affirms
    ("Can I start the installer directly from Windows?", "It is now possible to start the installer directly from "
     "Microsoft Windows with no need to change BIOS settings.", INSTALLER, "Yes"),
    ("Can I start the installer directly from Windows?", "You can start the installer directly from Microsoft "
     "Windows, and there is no need to change BIOS settings.", INSTALLER, "Yes"),
    ("Does the tool keep my settings?", "The tool keeps your settings, so there is no need to export them first.",
     "Tool", "Yes"),
    ("Can I resize the volume online?", "The volume can be resized online, no downtime needed.", "Volumes", "Yes"),
    ("Do I need to reboot to upgrade packages?", "Packages can be upgraded in place with no need to reboot.",
     "Upgrades", None),
    # "no" before a noun denies that thing, not the clause's action; a fronted "Unlike X," names what the clause is
    # not about (each was a false "No." to a question the sentence affirms)
    ("Can I create many projects?", "There's no limit on the number of projects you can create.", "Projects", None),
    ("Is there a limit on the number of projects?", "There's no limit on the number of projects.", "Projects", "No"),
    ("Can I connect to the default server?", "No configuration is needed to connect to the default server.",
     "Servers", None),
    ("Does the trial require a credit card?", "No credit card is required for the trial.", "Trial", "No"),
    ("Can the desktop app edit documents?", "Unlike the desktop app, the mobile app can't edit documents.", "Apps",
     None),
    ("Can the mobile app edit documents?", "Unlike the desktop app, the mobile app can't edit documents.", "Apps",
     "No"),
    ("Does apt-get have a full-upgrade command like apt?", "Unlike apt and aptitude, apt-get doesn't know the "
     "full-upgrade command.", "Package management > apt-get", "No"),
    # a copular question's complement is read before its trailing adjunct, whose gerund ("for upgrading") is the
    # preposition's object and whose "to the next" is a preposition, neither a predicate (the Debian FAQ: it needed
    # "next" in the sentence, and gave no verdict)
    ("Is aptitude the recommended tool for upgrading from one Debian release to the next?", "Note that aptitude is "
     "not the recommended tool for doing upgrades from one Debian GNU/Linux release to another.",
     "Keeping your Debian system up-to-date > How can I keep my Debian system current?", "No"),
    # a list item opening with its verb speaks of what its list's introduction names
    ("Does magnetic storage support elastic volumes?", "The following are some limitations for magnetic storage:\n\n"
     "- Doesn't support storage autoscaling.\n- Doesn't support elastic volumes.", "Storage > Magnetic storage", "No"),
])
def test_verdict_rules_on_their_own(question: str, text: str, location: str, verdict: str | None) -> None:
    found = VerdictFinder().find(question, split_units(text, 1), {1: location})
    assert (found.answer if found else None) == verdict


RAW_STRING = Passage("A raw string ending with an odd number of backslashes will escape the string’s quote:\n\n"
                     "```\n>>> r'C:\\this\\will\\not\\work\\'\n  File \"<stdin>\", line 1\n"
                     "SyntaxError: unterminated string literal (detected at line 1)\n```\n\n"
                     "There are several workarounds for this. One is to use regular strings and double the "
                     "backslashes:\n\n```\n>>> 'C:\\\\this\\\\will\\\\work\\\\'\n```",
                     "Programming FAQ > Numbers and strings > Can I end a raw string with an odd number of backslashes?")


def test_a_participle_phrase_describing_the_subject_is_no_answer_about_it(composer: Composer) -> None:
    # python3-doc's programming FAQ says what such a raw string does (a syntax error), not that one can end that
    # way: it was a false "Yes."; the sentence still leads the answer
    composition = composer.compose("Can a raw string end with an odd number of backslashes?", [RAW_STRING])
    assert composition.yes_no is None
    assert composition.body.startswith("A raw string ending with an odd number of backslashes will escape")
    assert _modifier("A raw string ending with an odd number of backslashes will escape the quote",
                     "Can a raw string end with an odd number of backslashes?") == {"end", "odd", "number", "backsl"}
    assert _modifier("Running git gc is safe", "Is running git gc safe?") == set()


def _modifier(clause: str, question: str) -> set[str]:
    return _subject_modifier(clause, frozenset(question.lower().rstrip("?").split()), _described(question))


def test_a_trailing_adjunct_is_the_questions_setting_unless_a_predicate_follows_its_preposition() -> None:
    assert _split_question("Is aptitude the recommended tool for upgrading from one Debian release to the next?") == (
        "for upgrading from one Debian release to the next", "Is aptitude the recommended tool")
    # a gerund before a noun may name a kind: the phrase is what is spent on, asked with the verb (the handbook)
    assert _split_question("Does Debian spend money on marketing campaigns?") == (
        "", "Does Debian spend money on marketing campaigns")
    assert _split_question("Is pushing into a bundle supported?") == ("", "Is pushing into a bundle supported")


def test_cross_references_and_restrictions_are_read_where_they_apply() -> None:
    assert _pointer_start("For details, see the user guide.") == 13
    assert _pointer_start("For a description of how credits affect performance see [Bursts](b.html)") == 52
    assert _pointer_start("**Note:** See the guide") == 10
    assert _pointer_start("You can see the list of packages.") is None
    assert _pointer_start("Users who see Error 42 should restart.") is None
    assert _pointer_start("Windows doesn't see Linux partitions.") is None
    assert asked_restrictions("Is the man command the only way to read manual pages") == ("only",)
    assert asked_restrictions("Will merging keep a change that I reverted on only one branch") == ()
    assert asked_names("Can I Use Bluetooth Headphones") == ("bluetooth", "headphones")
    # a list's introduction is the line right above it ending in a colon, not a code block or another list
    introduced = split_units("Intro.\n\nThe limits for tape:\n\n- Doesn't support encryption.", 1)
    assert _list_lead(introduced[-1], introduced) == "The limits for tape:"
    after_code = split_units("Tape is older.\n\n```\ntape\n```\n\n- Doesn't support encryption.", 1)
    assert _list_lead(after_code[-1], after_code) == ""


# python3-doc's FAQ pages (/usr/share/doc/python3.11/html/faq/): each entry's heading is its question and its
# answer opens with "Yes" or "No", which replies to that heading, not necessarily to what a user asked
PYD = Passage("Yes, .pyd files are dll’s, but there are a few differences. If you have a DLL named foo.pyd, then it "
              "must have a function PyInit_foo().", "Python on Windows FAQ > Is a *.pyd file the same as a DLL?")
TERNARY = Passage("Yes, there is. The syntax is as follows:\n\n```\n[on_true] if [expression] else [on_false]\n```\n\n"
                  "Before this syntax was introduced in Python 2.5, a common idiom was to use logical operators:\n\n"
                  "```\n[expression] and [on_true] or [on_false]\n```\n\nHowever, this idiom is unsafe, as it can give "
                  "wrong results when on_true has a false boolean value.",
                  "Programming FAQ > Core Language > Is there an equivalent of C’s “?:” ternary operator?")


def test_a_pages_own_yes_answers_its_heading_and_the_answer_says_which_question_it_answers(
        composer: Composer) -> None:
    # "Yes, .pyd files are dll's" opened the answer to a question about .so files: read as a verdict, a false "Yes"
    other = composer.compose("Is a .so file the same as a DLL?", [PYD])
    assert other.yes_no is None
    assert other.body.startswith("The docs' answer to _Is a *.pyd file the same as a DLL?_: Yes, .pyd files are dll’s")
    assert yes_no_of(other.body) is None and not invented_identifiers(other.body, [PYD.text])
    same = composer.compose("Is a .pyd file the same as a DLL?", [PYD])
    assert same.yes_no == "Yes" and same.body.startswith("Yes, .pyd files are dll’s, but there are a few differences")


def test_a_reply_opening_a_faq_entry_is_read_with_its_question(composer: Composer) -> None:
    # "Yes, there is." shares no word with the question; without its heading the old idiom led the answer
    composition = composer.compose("Does Python have a ternary operator?", [TERNARY])
    assert composition.yes_no is None  # "Before this syntax was introduced ..., a common idiom was ..." says what held then
    # (its heading quotes “?:”, which the entry's text does not: only a heading whose values the text holds is named)
    assert composition.body.startswith("The docs say: Yes, there is. The syntax is as follows [1]:\n\n```\n[on_true] if")


ARTICLES = Passage("It’s probably best to cite your favorite book about Python.\n\nThe very first article about Python "
                   "was written in 1991 and is now quite outdated.", "General Python FAQ > General Information > Are there "
                   "any published articles about Python that I can reference?")


def test_a_copular_question_is_answered_only_by_a_clause_saying_its_complement(composer: Composer) -> None:
    # "is X ...?" asks X to be its last word: "is now quite outdated" does not say "up to date" (a false "Yes.")
    composition = composer.compose("Is the very first article about Python still up to date?", [ARTICLES])
    assert composition.yes_no is None
    assert "written in 1991 and is now quite outdated" in composition.body


def test_a_faq_reply_whose_heading_names_what_its_text_does_not_opens_with_the_docs_say(composer: Composer) -> None:
    # the heading quotes “Monty Python’s Flying Circus”, which the reply does not hold: it is not named; and a smiley
    # is no closing punctuation, so the citation goes after it
    monty = Passage("No, but it helps.  :)", "General Python FAQ > Do I have to like “Monty Python’s Flying Circus”?")
    composition = composer.compose("Do I need to like Monty Python to use Python?", [monty])
    assert composition.yes_no is None
    assert composition.body == "The docs say: No, but it helps.  :) [1]"


SCANF = Passage("Not as such.\n\nFor simple input parsing, the easiest approach is usually to split the line into "
                "whitespace-delimited words using the split() method of string objects and then convert decimal "
                "strings to numeric values using int() or float().",
                "Programming FAQ > Numbers and strings > Is there a scanf() or sscanf() equivalent?")
BEGINNERS = Passage("Like Java, Python has a large standard library so that students can be assigned programming "
                    "projects very early in the course that do something.",
                    "General Python FAQ > Python in the real world > Is Python a good language for beginning programmers?")


def test_the_opening_under_a_question_heading_is_read_as_its_reply(composer: Composer) -> None:
    # "Not as such." shares no word with the question; the second page's "Like Java, Python has ..." led the answer
    composition = composer.compose("Does Python have something like scanf?", [SCANF, BEGINNERS])
    assert composition.body.startswith("Not as such. For simple input parsing, the easiest approach")
    assert composition.cited == [1]


# the Debian FAQ (debian-faq, uptodate.en.html): an entry's reply opens with a bare "No." to its heading's question
SINGLE_USER = Passage("No.  Packages can be upgraded in place, even in running systems.  Debian has a\n"
                      "start-stop-daemon program that is invoked to stop, then\nrestart running process if necessary "
                      "during a package upgrade.",
                      "Keeping your Debian system up-to-date > Must I go into single user mode in order to upgrade a "
                      "package?")


def test_an_entrys_bare_reply_to_its_own_heading_never_reads_as_the_answer(composer: Composer) -> None:
    # it was rendered "Yes." / the quoted sentence / "No. Debian has a start-stop-daemon ...": a "No." under a "Yes."
    composition = composer.compose("Can I upgrade packages while the system is running?", [SINGLE_USER])
    assert composition.yes_no == "Yes"
    assert composition.body.startswith("Packages can be upgraded in place, even in running systems [1].")
    assert "No." not in composition.body
    # without a checked verdict it opens the answer only after the question it replies to
    composition = composer.compose("Do I have to boot into single-user mode to upgrade a package?", [SINGLE_USER])
    assert composition.yes_no is None
    assert composition.body.startswith("The docs' answer to _Must I go into single user mode in order to upgrade a "
                                       "package?_: No. Packages can be upgraded in place")
