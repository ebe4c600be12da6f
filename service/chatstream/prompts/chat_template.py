"""A prompt class that lets the tokenizer's own chat template render the conversation.

Modern instruction models ship their prompt format as a Jinja chat template in the tokenizer config;
``apply_chat_template`` is the only reliable way to match it. Prompt classes are created with no
arguments (the seed's contract), so the tokenizer is bound to a subclass with :meth:`bind`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import AbstractChatPrompt


class ChatTemplatePrompt(AbstractChatPrompt):
    """Renders with ``tokenizer.apply_chat_template(..., add_generation_prompt=True)``."""

    tokenizer: ClassVar[Any] = None

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("user")
        self.set_responder("assistant")

    @classmethod
    def bind(cls, tokenizer: Any) -> type[ChatTemplatePrompt]:
        """A subclass of this class that renders with ``tokenizer``."""
        return type(cls.__name__, (cls,), {"tokenizer": tokenizer, "__module__": cls.__module__})

    def set_tokenizer(self, tokenizer: Any) -> None:
        """Render with ``tokenizer`` from now on (this object only; :meth:`bind` makes a class)."""
        super().set_tokenizer(tokenizer)
        if tokenizer is not None:
            self.tokenizer = tokenizer

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        eos = getattr(self.tokenizer, "eos_token", None)
        return [eos] if eos else []

    def create_prompt(self, opts: dict[str, Any] | None = None) -> str:
        if not self.chat_mode:
            return self.get_requester_last_msg() or ""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for content in self.get_contents(opts):
            if content.message is None:
                continue  # the open assistant turn: the generation prompt stands for it
            messages.append({"role": content.role, "content": content.message})
        if self.tokenizer is None or not getattr(self.tokenizer, "chat_template", None):
            # No template (a mock or a base model): a plain, readable transcript.
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
            return text + "assistant:"
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
