"""Prompt templates of the DiaSynth agents (text files; this file only makes them package data)."""
