"""Analyzer backends. Import the one you need lazily (see ``registry``): each pulls in
heavy libraries (torch/transformers/xgrammar or openai)."""
