"""Chat-platform adapters (console, Slack, Discord): translate events to and from the core.

Not to be confused with `adapters_lora`, which holds the brand-voice LoRA adapters. This
package's import name also collides with AdapterHub's `adapters` on PyPI; install supportbot
in its own virtual environment (the README's commands do).
"""
