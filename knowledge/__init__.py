"""Knowledge: docs folders -> documents -> chunks -> embeddings -> LanceDB -> hybrid retrieval."""
