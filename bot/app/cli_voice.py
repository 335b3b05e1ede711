"""`supportbot voice ...`: check, train, eval, list, activate, rollback brand voices."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.app.cli_context import Context


@click.group()
def voice() -> None:
    """Brand voices: LoRA adapters trained on your example replies."""


def _registry_errors(func):
    """Show registry and dataset problems as clean CLI errors."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from bot.protocols import VoiceRefused

        try:
            return func(*args, **kwargs)
        except (VoiceRefused, FileNotFoundError) as err:
            raise click.ClickException(str(err)) from None

    return wrapper


@voice.command()
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_registry_errors
def check(dataset: Path) -> None:
    """Validate a voice dataset (JSONL) and show the frame it would teach, without training."""
    from bot.app.voices import check_voice_dataset

    click.echo(check_voice_dataset(dataset))


@voice.command()
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--name", required=True, help="Name of the new voice, e.g. acme-v1 (never overwritten).")
@click.option("--epochs", type=int, default=None)
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimizer steps.")
@click.option("--learning-rate", type=float, default=None)
@click.option("--rank", type=int, default=None, help="LoRA rank.")
@click.option("--batch-size", type=int, default=None, help="Examples per optimizer step.")
@click.option("--top-layers", type=int, default=None,
              help="LoRA only in the top N decoder layers (fewer: faster on a small CPU).")
@click.option("--seed", type=int, default=None)
@click.option("--activate", is_flag=True, help="Make it the active voice when training succeeds.")
@click.pass_obj
@_registry_errors
def train(obj: Context, dataset: Path | None, name: str, activate: bool, **overrides) -> None:
    """Train a voice on DATASET (default: the bundled sample voice)."""
    from bot.app.voices import bundled_voice_dataset

    result = obj.app.voices.train(dataset or bundled_voice_dataset(), name,
                                 {k: v for k, v in overrides.items() if v is not None})
    click.echo(f"Trained {result.name}: held-out loss {result.initial_held_out_loss:.3f} -> "
               f"{result.best_held_out_loss:.3f} in {result.steps} steps, {result.seconds:.0f}s"
               + (" (stopped early)" if result.stopped_early else "") + f". Saved to {result.path}")
    click.echo(f"Learned from {result.frame.replies} training replies: {result.frame.summary()}")
    if activate:
        obj.app.voices.activate_voice(name)
        click.echo(f"Active voice: {name}")


@voice.command(name="eval")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_registry_errors
def evaluate(obj: Context, name: str, as_json: bool) -> None:
    """Compare a voice with the base model on its held-out examples."""
    report = obj.app.evaluate_voice(name, log=None if as_json else lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(report))
        return
    p, v, g = report["perplexity"], report["voice_match"], report["grounding"]
    click.echo(f"Held-out examples: {report['held_out_examples']}")
    click.echo(f"Perplexity of reference replies: base {p['base']:.2f} -> adapter {p['adapter']:.2f} "
               f"({report['perplexity_reduction']:.0%} lower)")
    click.echo(f"Voice match: base {v['base']:.2f}, adapter {v['adapter']:.2f} (reference replies {v['reference']:.2f})")
    for label in ("base", "adapter"):
        click.echo(f"Grounding ({label}): fact recall {g[label]['fact_recall']}, "
                   f"invented citations {g[label]['invented_citation_rate']}")
    frame = report["frame"]
    click.echo(f"Frame learned: {frame['learned']}")
    if "skipped" in frame:
        click.echo(f"Frame in answers: skipped ({frame['skipped']})")
        return
    recall = frame["fact_recall"]
    click.echo(f"Frame in answers to {frame['answered']} held-out questions: greeting {_rate(frame['greeting_rate'])}, "
               f"full sign-off {_rate(frame['sign_off_rate'])}; fact recall {recall['voiced']} with the voice, "
               f"{recall['plain']} without; invented identifiers {frame['invented_identifiers']}; "
               f"changes outside the frame {frame['unframed_changes']}; the model's own line in {frame['model_lines']}; "
               f"lead-in {frame['lead_in_ms']} ms per answer")


def _rate(value: float | None) -> str:
    return "n/a (the voice has none)" if value is None else f"{value:.2f}"


@voice.command(name="list")
@click.pass_obj
def list_voices(obj: Context) -> None:
    """Trained voices; * marks the active one."""
    registry = obj.app.voices.registry
    active = registry.active
    voices = registry.list()
    if not voices:
        click.echo("No voices yet: supportbot voice train --name my-voice")
        return
    for info in voices:
        metrics = info.meta.get("metrics", {})
        click.echo(f"{'*' if info.name == active else ' '} {info.name:<20} {info.meta.get('created_at', '')}  "
                   f"base {info.meta.get('base_model', '?')}  held-out ppl "
                   f"{metrics.get('held_out_perplexity_before', '?')} -> {metrics.get('held_out_perplexity_after', '?')}")
        frame = obj.app.voices.frame(info.name)
        click.echo(f"    {frame.summary() if frame else 'frame: unknown (trained before frames were learned; retrain)'}")


@voice.command()
@click.argument("name")
@click.pass_obj
@_registry_errors
def activate(obj: Context, name: str) -> None:
    """Make NAME the active voice (running bots switch on their next answer)."""
    previous = obj.app.voices.activate_voice(name)
    click.echo(f"Active voice: {name}" + (f" (was {previous}; `supportbot voice rollback` to undo)" if previous else ""))


@voice.command()
@click.pass_obj
@_registry_errors
def rollback(obj: Context) -> None:
    """Go back to the previously active voice."""
    name = obj.app.voices.rollback_voice()
    click.echo(f"Active voice: {name or 'base model (no voice adapter)'}")
