"""Answer benchmark: answerers side by side on the same index, in one run.

- composed: the product's answer path (facts quoted from the passages, the model frames);
- main: the same path with the composer of the `main` branch (git show main:bot/composer.py;
  `--baseline REF` for another commit, e.g. the one before a merge into main), so a change to
  the composer is measured against what it replaces, in the same run;
- quote: the top relevant passage's first words, as many as the composed answer has (equal
  length; 65 when composed did not run or abstained);
- quote40: the first 40 words of the top relevant passage;
- generated: the model writes the whole answer from the passages (the path before composing,
  i.e. `answers.mode = "free"` without the verification).

Corpora: the sample docs with user-style questions (tests/benchmarks/data, written for this)
plus off-topic questions; the Debian handbook (Debian's debian-handbook package, HTML at
/usr/share/doc/debian-handbook/html/en-US) with yes/no questions whose truth was checked on the
page both ways, how-to and where-is questions and off-topic ones
(data/handbook_questions.jsonl, each marked with its half); and aws-docs-qa (Answer_True,
Yes_No_True) when ../shared has it. Every figure is printed per half: the handbook's own
"tune"/"report" marks, else odd rows / even rows. Settings were chosen looking at the tune
(odd) half only, so the report (even) half is the honest figure.

lead_recall is the share of the reference's content words held by the answer's first paragraph
(a "Yes."/"No." line aside): the answer first, not the page's introduction.

Follow-ups (data/handbook_follow_ups.jsonl, 18 short follow-ups such as "And for atd?" after
"How can I stop some users from scheduling cron jobs?", on handbook pages and with a half
mark each): answered in their conversation (the earlier question answered first, in one
thread) and alone, the same follow-up without its thread. Where-is questions
(data/handbook_where_questions.jsonl) run as a corpus of their own. Both sets were written for
the follow-up and answer-first rules, on handbook sections the older sets do not ask about.

Verdict columns: verdict_ok is the share of known yes/no questions whose answer opens with the
true verdict (no verdict counts as wrong); false_yn counts answers opening with the wrong one;
false_howto counts how-to / where-is questions (all of them things the docs show how to do)
answered "No.".

The Python FAQ (Debian's python3-doc, /usr/share/doc/python3.11/html/faq: 9 pages whose entries are
questions answered "Yes, ..." or "No, ..." under their heading) with 32 yes/no questions both ways
(data/python_faq_questions.jsonl, each with its half): a kind of docs no rule was chosen on before
its eight tune questions showed two false "Yes." (an answer opening with a FAQ entry's own "Yes"
to another question counts as a verdict, as a user reads it).

The Debian FAQ (Debian's debian-faq, /usr/share/doc/debian/FAQ: 16 HTML chapters of questions answered in
prose) with 39 yes/no questions written as users ask them, about half paraphrased (data/debian_faq_questions.jsonl:
19 tune, 20 report, each label checked against the sentence quoted in its "evidence" field): its tune half
showed one false "Yes." ("without the need to change BIOS settings" read as affirming the change).

With --git-yes-no, also the 40 yes/no questions on the git documentation (Debian's git-doc at
/usr/share/doc/git-doc; tests/benchmarks/data/git_yes_no_questions.jsonl): the set the yes/no
rule was chosen on.

Run: .venv/bin/python -m tests.benchmarks.bench_answers [--aws-limit N] [--answerers composed,main,quote]
     [--no-sample] [--no-aws] [--no-handbook] [--no-faq] [--handbook-index DIR] [--aws-index DIR]
     [--data-dir DIR --voice NAME]   (a trained voice: share of answers with its greeting and sign-off)
     [--git-yes-no [--git-index DIR]] [--show-follow-ups]
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.answer_metrics import f1, garbled, invented_identifiers, recall, word_count, yes_no_of  # noqa: E402
from bot.app.config import load_settings  # noqa: E402
from bot.evaluation import percentile  # noqa: E402
from bot.generated_text import cited_numbers, tidy  # noqa: E402
from bot.prompting import build_messages  # noqa: E402
from bot.types import Question  # noqa: E402
from bot.app.application import App  # noqa: E402
from bot.app.knowledge_parts import bundled_sample_docs  # noqa: E402
from tests.benchmarks.aws_docs_qa import DATASET, docs_root  # noqa: E402

DATA = Path(__file__).parent / "data"


@dataclass
class Item:
    question: str
    answer: str | None  # None: off-topic, must abstain
    sources: list[str]
    yes_no: str | None = None
    kind: str = ""  # "howto": a how-to or where-is question about something the docs show how to do
    half: str | None = None  # "tune" / "report" where the set marks it


@dataclass
class Result:
    text: str
    abstained: bool
    cited: list[str]
    passages: list[str]
    ms: float


@dataclass
class Tally:
    rows: list[dict] = field(default_factory=list)

    def add(self, item: Item, result: Result) -> None:
        row = {"abstained": result.abstained, "ms": result.ms, "off_topic": item.answer is None}
        if item.answer is not None and not result.abstained:
            row.update(recall=recall(result.text, item.answer), f1=f1(result.text, item.answer),
                       lead_recall=recall(_lead(result.text), item.answer),
                       words=word_count(result.text),
                       invented=bool(invented_identifiers(result.text, result.passages)),
                       garbled=garbled(result.text) is not None,
                       cited_hit=any(s in item.sources for s in result.cited))
        elif item.answer is not None:
            row.update(recall=0.0, f1=0.0, lead_recall=0.0, words=word_count(result.text), invented=False, garbled=False,
                       cited_hit=False)
        said = None if result.abstained else yes_no_of(result.text)
        if item.yes_no:
            row["yes_no_ok"] = said == item.yes_no
            row["false_yn"] = said is not None and said != item.yes_no
        if item.kind == "howto":
            row["false_howto"] = said == "No"
        self.rows.append(row)

    def summary(self) -> dict[str, float]:
        inscope = [r for r in self.rows if not r["off_topic"]]
        off = [r for r in self.rows if r["off_topic"]]
        answered = [r for r in inscope if not r["abstained"]]
        yn = [r["yes_no_ok"] for r in self.rows if "yes_no_ok" in r]

        def mean(values) -> float:
            values = list(values)
            return round(statistics.fmean(values), 3) if values else float("nan")

        return {
            "recall": mean(r["recall"] for r in inscope), "f1": mean(r["f1"] for r in inscope),
            "lead_recall": mean(r["lead_recall"] for r in inscope),
            "words": mean(r["words"] for r in answered),
            "false_yn": sum(r.get("false_yn", False) for r in self.rows),
            "false_howto": sum(r.get("false_howto", False) for r in self.rows),
            "invented": mean(r["invented"] for r in answered), "garbled": mean(r["garbled"] for r in answered),
            "cited_hit": mean(r["cited_hit"] for r in answered), "verdict_ok": mean(yn),
            "answered": mean(not r["abstained"] for r in inscope),
            "off_abstain": mean(r["abstained"] for r in off),
            "p50_ms": round(percentile([r["ms"] for r in self.rows], 50)),
            "p95_ms": round(percentile([r["ms"] for r in self.rows], 95)),
        }


def _lead(text: str) -> str:
    """The answer's first paragraph, past a verdict line ("Yes."): what a reader sees first."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    if len(paragraphs) > 1 and re.fullmatch(r"\s*(?:Yes|No)\.\s*", paragraphs[0]):
        paragraphs = paragraphs[1:]
    return paragraphs[0] if paragraphs else ""


_COMPOSED_WORDS: dict[str, int] = {}  # question -> words of its composed answer, for the equal-length quote


def composed(app: App) -> Callable[[str], Result]:
    return _answering(app, app.answers, record=True)


def _answering(app: App, service, record: bool = False) -> Callable[[str], Result]:
    def run(question: str) -> Result:
        t0 = time.perf_counter()
        answer = service.answer(Question(text=question))
        ms = (time.perf_counter() - t0) * 1000
        if record and not answer.abstained:
            _COMPOSED_WORDS[question] = word_count(answer.answer)
        return Result(answer.answer, answer.abstained, [c.source for c in answer.citations],
                      cited_passages(app, question, answer), ms)
    return run


BASELINE_REF = "main"  # the commit whose composer the `main` answerer runs (--baseline)


def main_branch(app: App) -> Callable[[str], Result]:
    """The product's path with the composer as it is at BASELINE_REF (the `main` branch unless
    --baseline says otherwise): its module is read with `git show` and loaded beside ours (it
    imports the same shared modules)."""
    root = Path(__file__).resolve().parents[2]
    source = subprocess.run(["git", "show", f"{BASELINE_REF}:bot/composer.py"], cwd=root, capture_output=True,
                            text=True, check=True).stdout
    module = types.ModuleType("composer_at_main")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, "main:bot/composer.py", "exec"), module.__dict__)  # noqa: S102 - our own file at main
    service = copy.copy(app.answers)
    service.composer = module.Composer(app.answers.composer.similarity)
    return _answering(app, service)


def cited_passages(app: App, question: str, answer) -> list[str]:
    """The texts of the passages the answer cites (what it may quote from)."""
    cited = {c.source for c in answer.citations}
    return [p.text for p in app.answers.retrieve(Question(text=question), []) if p.source in cited]


def _from_passages(app: App, write: Callable[[str, list], tuple[str, list[str]]]) -> Callable[[str], Result]:
    """An answerer that writes from the same relevant passages the product retrieves."""
    def run(question: str) -> Result:
        t0 = time.perf_counter()
        relevant = [p for p in app.answers.retrieve(Question(text=question), []) if p.relevant]
        text, cited = write(question, relevant) if relevant else ("", [])
        return Result(text, not text, cited, [p.text for p in relevant], (time.perf_counter() - t0) * 1000)
    return run


def generated(app: App) -> Callable[[str], Result]:
    """The whole answer written by the model, unchecked (the path the composer replaced)."""
    def write(question: str, relevant: list) -> tuple[str, list[str]]:
        raw = app.generator.generate(build_messages(question, relevant, []), voice="base")
        text, numbers = cited_numbers(tidy(raw), len(relevant))
        return text, [relevant[n - 1].source for n in (numbers or [1])]
    return _from_passages(app, write)


def quote40(app: App) -> Callable[[str], Result]:
    return _from_passages(app, lambda question, relevant: (" ".join(relevant[0].text.split()[:40]), [relevant[0].source]))


def quote(app: App) -> Callable[[str], Result]:
    """The top passage's first words, as many as the composed answer to the question had."""
    def write(question: str, relevant: list) -> tuple[str, list[str]]:
        return " ".join(relevant[0].text.split()[:_COMPOSED_WORDS.get(question, 65)]), [relevant[0].source]
    return _from_passages(app, write)


ANSWERERS = {"composed": composed, "main": main_branch, "quote": quote, "generated": generated, "quote40": quote40}


def sample_items() -> list[Item]:
    items = [Item(r["question"], r["answer"], r["sources"], r.get("yes_no")) for r in _jsonl(DATA / "driftwood_user_questions.jsonl")]
    return items + [Item(r["question"], None, []) for r in _jsonl(DATA / "off_topic_questions.jsonl")]


GIT_DOCS = Path("/usr/share/doc/git-doc")


def git_yes_no_items() -> list[Item]:
    return [Item(r["question"], r["answer"], r["sources"], r["yes_no"])
            for r in _jsonl(DATA / "git_yes_no_questions.jsonl")]


HANDBOOK_DOCS = Path("/usr/share/doc/debian-handbook/html/en-US")


def handbook_items() -> list[Item]:
    items = [Item(r["question"], r["answer"], r["sources"], r.get("yes_no"), r.get("kind", ""), r["half"])
             for r in _jsonl(DATA / "handbook_questions.jsonl")]
    return items + [Item(r["question"], None, [], half=r["half"]) for r in _jsonl(DATA / "handbook_off_topic_questions.jsonl")]


PYTHON_FAQ = next(iter(sorted(Path("/usr/share/doc").glob("python3*/html/faq"))), Path("/usr/share/doc/python3/html/faq"))


DEBIAN_FAQ = Path("/usr/share/doc/debian/FAQ")
# (name, docs, questions file, the Debian package that installs the docs)
FAQ_SETS = [("Python FAQ", PYTHON_FAQ, "python_faq_questions.jsonl", "python3-doc"),
            ("Debian FAQ", DEBIAN_FAQ, "debian_faq_questions.jsonl", "debian-faq")]


def faq_items(name: str) -> list[Item]:
    return [Item(r["question"], r["answer"], r["sources"], r["yes_no"], r["kind"], r["half"])
            for r in _jsonl(DATA / name)]


@dataclass
class FollowUp:
    history: list[str]  # the earlier questions of the thread, oldest first
    item: Item


def follow_up_items() -> list[FollowUp]:
    return [FollowUp(r["history"], Item(r["question"], r["answer"], r["sources"], half=r["half"]))
            for r in _jsonl(DATA / "handbook_follow_ups.jsonl")]


def where_items() -> list[Item]:
    return [Item(r["question"], r["answer"], r["sources"], kind="howto", half=r["half"])
            for r in _jsonl(DATA / "handbook_where_questions.jsonl")]


def run_follow_ups(name: str, app: App, follow_ups: list[FollowUp], show: bool = False) -> None:
    """Each follow-up answered in its thread (its earlier questions answered first in the same
    conversation) and alone; the quote baseline reads the passages the thread retrieves."""
    print(f"\n== {name}: {len(follow_ups)} follow-ups, with and without their conversation")
    cols = ["recall", "f1", "lead_recall", "words", "invented", "cited_hit", "answered", "p50_ms"]
    print(f"{'answerer':<10}{'half':<7}" + "".join(f"{c:>12}" for c in cols))
    for mode in ("thread", "alone", "quote"):
        app.knowledge.embedder.forget()
        halves: dict[str, Tally] = {}
        for n, follow_up in enumerate(follow_ups):
            conversation = f"bench-{mode}-{n}"
            if mode != "alone":
                for earlier in follow_up.history:
                    app.answers.answer(Question(text=earlier, conversation_id=conversation))
            question = Question(text=follow_up.item.question, conversation_id=conversation)
            t0 = time.perf_counter()
            passages = app.answers.retrieve(question)
            if mode == "quote":
                relevant = [p for p in passages if p.relevant]
                text = " ".join(relevant[0].text.split()[:_COMPOSED_WORDS.get(conversation, 65)]) if relevant else ""
                result = Result(text, not text, [relevant[0].source] if relevant else [], [p.text for p in relevant],
                                (time.perf_counter() - t0) * 1000)
            else:
                answer = app.answers.answer(question)
                ms = (time.perf_counter() - t0) * 1000
                cited = {c.source for c in answer.citations}
                if mode == "thread" and not answer.abstained:
                    _COMPOSED_WORDS[f"bench-quote-{n}"] = word_count(answer.answer)
                result = Result(answer.answer, answer.abstained, [c.source for c in answer.citations],
                                [p.text for p in passages if p.source in cited], ms)
                if show and mode == "thread":
                    asked = app.answers.standalone(follow_up.item.question,
                                                   app.answers.memory.history(conversation)[:-1])
                    print(f"  {follow_up.item.question!r} -> {asked!r}: {answer.answer[:100]!r}")
            halves.setdefault(follow_up.item.half or "all", Tally()).add(follow_up.item, result)
        for half, tally in halves.items():
            s = tally.summary()
            print(f"{mode:<10}{half:<7}" + "".join(f"{s[c]:>12}" for c in cols), flush=True)


def aws_items(limit: int | None) -> list[Item]:
    items = []
    with open(DATASET / "QA_true.csv", encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            guide, _, page = row["Document_True"].strip().partition("/")
            label = row["Yes_No_True"].strip()
            items.append(Item(row["Question"].strip(), row["Answer_True"].strip(), [f"{guide}/doc_source/{page}"],
                              label if label in ("Yes", "No") else None))
    return items[:limit] if limit else items


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_corpus(name: str, app: App, items: list[Item], answerers: list[str]) -> None:
    print(f"\n== {name}: {sum(i.answer is not None for i in items)} in-scope, "
          f"{sum(i.answer is None for i in items)} off-topic questions")
    cols = ["recall", "f1", "lead_recall", "words", "invented", "garbled", "cited_hit", "verdict_ok", "false_yn", "false_howto",
            "answered", "off_abstain", "p50_ms", "p95_ms"]
    print(f"{'answerer':<10}{'half':<7}" + "".join(f"{c:>12}" for c in cols))
    for answerer in sorted(answerers, key=lambda a: a != "composed"):  # composed first: the quote takes its lengths
        ask = ANSWERERS[answerer](app)
        app.knowledge.embedder.forget()  # each answerer starts as cold as the first
        halves: dict[str, Tally] = {}
        for i, item in enumerate(items, 1):
            half = item.half or ("odd" if i % 2 else "even")
            halves.setdefault(half, Tally()).add(item, ask(item.question))
        for half, tally in halves.items():
            s = tally.summary()
            print(f"{answerer:<10}{half:<7}" + "".join(f"{s[c]:>12}" for c in cols), flush=True)


def voice_check(app: App, voice: str, items: list[Item]) -> None:
    """With a voice active: how often a lead-in (a first paragraph quoting nothing) and the
    voice's sign-off frame the answer, its recall (compare with the composed row) and
    invented identifiers."""
    app.voices.activate_voice(voice)
    framed = leads = signed = total = invented = 0
    recalls: list[float] = []
    seen_leads: dict[str, int] = {}
    for item in [i for i in items if i.answer is not None]:
        answer = app.answers.answer(Question(text=item.question))
        if answer.abstained:
            recalls.append(0.0)
            continue
        total += 1
        sign_off = app.answers.framer.sign_off(voice, None)
        paragraphs = [p.strip() for p in answer.answer.split("\n\n") if p.strip()]
        has_lead = len(paragraphs) > 1 and not re.search(r"\[\d+\]|```|^\s*[-|]|^\s*\d+\.|^(?:Yes|No)\.$", paragraphs[0])
        has_sign_off = bool(sign_off) and paragraphs[-1] == sign_off
        leads += has_lead
        signed += has_sign_off
        framed += has_lead and has_sign_off
        if has_lead:
            seen_leads[paragraphs[0]] = seen_leads.get(paragraphs[0], 0) + 1
        recalls.append(recall(answer.answer, item.answer))
        invented += bool(invented_identifiers(answer.answer, cited_passages(app, item.question, answer)))
    common = sorted(((n, t) for t, n in seen_leads.items()), reverse=True)[:3]
    print(f"voice {voice}: lead-in {leads}/{total}, sign-off {signed}/{total} ({sign_off!r}), both {framed}/{total}; "
          f"recall {statistics.fmean(recalls):.3f}; answers with invented identifiers {invented}; "
          f"most common lead-ins {common}", flush=True)


def corpus_app(sample: App, data: Path | None, docs: Path, prefix: str) -> App:
    """An app over another docs folder sharing the sample app's loaded models; `data` (an
    index built before) is reused, else a temp dir is indexed."""
    app = App(load_settings(None, data_dir=data or Path(tempfile.mkdtemp(prefix=prefix)), docs=[str(docs)]),
              embedder=sample.knowledge.embedder, generator=sample.generator)
    if not app.knowledge.store.live():
        app.index_ops.index()
    return app


def print_machine_rates() -> None:
    """The machine's bare arithmetic, beside which the answer times (p50_ms) are read: a composed
    answer's time is mostly the bundled embedder's encoding of candidate sentences."""
    import torch

    from tests.benchmarks.bench_generation import bare_rates

    rates = bare_rates(256, 384, 1536)  # a batch of sentences through the embedder's widest layer
    print(f"machine: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; a bare 256x384x1536 product: "
          f"bf16 {rates['bfloat16_rate']:.0f} GFLOP/s, fp32 {rates['float32_rate']:.0f} GFLOP/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answerers", default="composed,main,quote")
    parser.add_argument("--baseline", default="main", help="git ref whose composer the `main` answerer runs")
    parser.add_argument("--aws-limit", type=int, default=None, help="first N aws-docs-qa questions (default all)")
    parser.add_argument("--no-aws", action="store_true", help="the sample docs only")
    parser.add_argument("--no-sample", action="store_true", help="aws-docs-qa only")
    parser.add_argument("--aws-index", type=Path, help="a data dir already indexed on aws-docs-qa (reused)")
    parser.add_argument("--data-dir", type=Path, help="data dir for the sample index (default: a temp dir)")
    parser.add_argument("--voice", action="append", default=[], help="a trained voice in --data-dir to check")
    parser.add_argument("--git-yes-no", action="store_true", help="also the yes/no questions on the git docs")
    parser.add_argument("--git-index", type=Path, help="a data dir already indexed on the git docs (reused)")
    parser.add_argument("--no-handbook", action="store_true", help="skip the Debian handbook set")
    parser.add_argument("--no-faq", action="store_true", help="skip the Python and Debian FAQ sets")
    parser.add_argument("--show-follow-ups", action="store_true", help="print each follow-up's reading and answer")
    parser.add_argument("--handbook-index", type=Path, help="a data dir already indexed on the handbook (reused)")
    args = parser.parse_args()
    global BASELINE_REF
    BASELINE_REF = args.baseline
    answerers = [a for a in args.answerers.split(",") if a]

    data = args.data_dir or Path(tempfile.mkdtemp(prefix="supportbot-answers-"))
    app = App(load_settings(None, data_dir=data, docs=[str(bundled_sample_docs())]))
    app.index_ops.index()
    print_machine_rates()
    if not args.no_sample:
        run_corpus("sample docs (user-style questions)", app, sample_items(), answerers)
    for voice in args.voice:
        voice_check(app, voice, sample_items())
    if args.voice:
        app.voices.rollback_voice()

    if args.git_yes_no:
        if GIT_DOCS.is_dir():
            git = corpus_app(app, args.git_index, GIT_DOCS, "supportbot-answers-git-")
            run_corpus("git docs (yes/no questions)", git, git_yes_no_items(), answerers)
        else:
            print(f"\nSKIP git docs: not found at {GIT_DOCS} (apt-get install git-doc)")
    if not args.no_handbook:
        if HANDBOOK_DOCS.is_dir():
            handbook = corpus_app(app, args.handbook_index, HANDBOOK_DOCS, "supportbot-answers-handbook-")
            run_corpus("Debian handbook (yes/no both ways, how-to, off-topic)", handbook, handbook_items(), answerers)
            run_corpus("Debian handbook where-is questions", handbook, where_items(), answerers)
            run_follow_ups("Debian handbook follow-ups", handbook, follow_up_items(), args.show_follow_ups)
        else:
            print(f"\nSKIP Debian handbook: not found at {HANDBOOK_DOCS} (apt-get install debian-handbook)")
    for name, docs, questions, package in ([] if args.no_faq else FAQ_SETS):
        if docs.is_dir():
            faq = corpus_app(app, None, docs, f"supportbot-answers-{package}-")
            run_corpus(f"{name} (yes/no both ways)", faq, faq_items(questions), answerers)
        else:
            print(f"\nSKIP {name}: not found at {docs} (apt-get install {package})")
    if args.no_aws:
        return
    if (DATASET / "documents").is_dir():
        aws = corpus_app(app, args.aws_index, docs_root(), "supportbot-answers-aws-")
        run_corpus("aws-docs-qa", aws, aws_items(args.aws_limit), answerers)
    else:
        print(f"\nSKIP aws-docs-qa: not found at {DATASET}")


if __name__ == "__main__":
    main()
