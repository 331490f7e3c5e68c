"""Sentence embeddings and the FAISS index over past questions and answers (GPU when present)."""
