"""LoRA adapters (brand voice) and the generator that serves the base model with them.

Not to be confused with `adapters`, which holds the chat-platform adapters.
"""
