"""Building blocks for the presets: a prompt rendered as a head followed by one piece per message.

A message with no text is an open turn: its tag is written and the model continues from there (the
responder's, normally; the requester's only when the seed's prefix-as-stop-string probe renders it).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from .base import AbstractChatPrompt
from .content import ChatContent


class SectionPrompt(AbstractChatPrompt):
    """``render_head()`` then ``render_content(c)`` for every content :meth:`get_contents` returns."""

    def create_prompt(self, opts: dict[str, Any] | None = None) -> str:
        if not self.chat_mode:
            return self.get_requester_last_msg() or ""
        contents = self.get_contents(opts)
        return self.render_head() + "".join(self.render_content(content) for content in contents)

    def render_head(self) -> str:
        """What comes before the first message: the system text, as is, by default."""
        return self.system

    @abstractmethod
    def render_content(self, content: ChatContent) -> str:
        """One message; ``content.message`` falsy means the turn is open."""


class RoleColonPrompt(SectionPrompt):
    """``role: message<separator>`` lines ending with the responder's open ``role<open_turn_suffix>``."""

    separator = "\n"
    open_turn_suffix = ":"

    def render_content(self, content: ChatContent) -> str:
        if not content.role:
            return ""
        if content.message:
            return f"{content.role}: {content.message}{self.separator}"
        return content.role + self.open_turn_suffix


class PlainTextPrompt(SectionPrompt):
    """Base language models with no chat format: the system text and every message, concatenated.

    Each reply continues the text before it, as in the model cards' completion examples.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("")
        self.set_responder("")

    def get_stop_strs(self) -> list[str] | None:
        return [] if self.chat_mode else None

    def render_content(self, content: ChatContent) -> str:
        return content.message or ""
