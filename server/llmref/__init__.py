"""llmref: an offline LLM reference desk for the editor."""

__version__ = "0.1.0"
