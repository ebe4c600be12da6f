"""The seed's prompt model: a conversation kept as role-tagged contents, rendered per model family.

``AbstractChatPrompt`` keeps the seed's public method names (``add_requester_msg``, ``create_prompt``,
``get_stop_strs``, ...) because user code subclasses it; storage-friendly ``to_dict``/``from_dict`` let
a history store rebuild the same object on any replica.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class ChatContent:
    """One message of a conversation: a role name and its text (``None`` while being generated)."""

    def __init__(self, role: str, msg: str | None = "") -> None:
        self.role = role
        self.message = msg

    def get_role(self) -> str:
        return self.role

    def get_message(self) -> str | None:
        return self.message

    def set_message(self, msg: str | None) -> None:
        self.message = msg

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatContent:
        return cls(data["role"], data.get("message"))

    def __repr__(self) -> str:
        return f"ChatContent(role={self.role!r}, message={self.message!r})"


class AbstractChatPrompt(ABC):
    """A builder of chat prompts following the etiquette of one language model family."""

    def __init__(self) -> None:
        self.system = ""
        self.chat_contents: list[ChatContent] = []
        self.responder_messages: list[ChatContent] = []
        self.requester_messages: list[ChatContent] = []
        self.requester = ""
        self.responder = ""
        self.chat_mode = True

    # --- conversation state (the seed's API) ------------------------------------------------
    def get_turn(self) -> int:
        return len(self.requester_messages)

    def set_chat_mode_enabled(self, enabled: bool) -> None:
        self.chat_mode = enabled

    def is_chat_mode_enabled(self) -> bool:
        return self.chat_mode

    def set_system(self, system: str) -> None:
        self.system = system or ""

    def set_requester(self, requester: str) -> None:
        self.requester = requester

    def set_responder(self, responder: str) -> None:
        self.responder = responder

    def add_requester_msg(self, message: str | None) -> None:
        self._add_msg(ChatContent(role=self.requester, msg=message))

    def add_responder_msg(self, message: str | None) -> None:
        self._add_msg(ChatContent(role=self.responder, msg=message))

    def set_responder_last_msg(self, message: str | None) -> None:
        self.responder_messages[-1].set_message(message)

    def get_responder_last_msg(self) -> str | None:
        return self.responder_messages[-1].get_message() if self.responder_messages else None

    def get_requester_last_msg(self) -> str | None:
        return self.requester_messages[-1].get_message() if self.requester_messages else None

    def remove_last_responder_message(self) -> None:
        """Blank the last AI reply so that it is generated again (regenerate)."""
        if self.responder_messages and self.chat_contents and self.chat_contents[-1].role == self.responder:
            self.chat_contents[-1].set_message(None)

    def clear(self) -> None:
        """Forget the conversation but keep the system text and role names."""
        self.chat_contents = []
        self.responder_messages = []
        self.requester_messages = []

    def drop_oldest_turn(self) -> bool:
        """Remove the oldest requester/responder exchange; False when only the current turn is left."""
        if self.get_turn() <= 1:
            return False
        first = self.requester_messages.pop(0)
        index = self.chat_contents.index(first)
        removed = [first]
        # Everything up to (not including) the next requester message belongs to that turn.
        nxt = index + 1
        while nxt < len(self.chat_contents) and self.chat_contents[nxt].role != self.requester:
            removed.append(self.chat_contents[nxt])
            nxt += 1
        self.chat_contents = self.chat_contents[:index] + self.chat_contents[nxt:]
        self.responder_messages = [m for m in self.responder_messages if all(m is not r for r in removed)]
        return True

    def _add_msg(self, content: ChatContent) -> None:
        self.chat_contents.append(content)
        if content.role == self.responder:
            self.responder_messages.append(content)
        elif content.role == self.requester:
            replacements = self.get_replacement_when_input()
            if replacements is not None and content.get_message() is not None:
                content.set_message(self.replace_string(content.get_message(), replacements))
            self.requester_messages.append(content)

    def is_requester_role(self, role: str) -> bool:
        return self.requester == role

    def get_contents(self, opts: dict[str, Any] | None = None) -> list[ChatContent]:
        """The contents to render; ``{"omit_last_message": True}`` leaves out the newest one."""
        opts = opts or {}
        if opts.get("omit_last_message"):
            return self.chat_contents[:-1]
        return self.chat_contents

    def get_skip_len(self, omit_last_message: bool = False) -> int:
        return len(self.create_prompt({"omit_last_message": omit_last_message}))

    @staticmethod
    def replace_string(original_string: str, replace_list: list[tuple[str, str]] | None) -> str:
        """Apply ``(old, new)`` replacement pairs in order."""
        if replace_list is None or original_string is None:
            return original_string
        for old, new in replace_list:
            original_string = original_string.replace(old, new)
        return original_string

    def to_messages(self) -> list[dict[str, str]]:
        """The conversation as OpenAI-style messages (roles ``system``/``user``/``assistant``)."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for content in self.chat_contents:
            if content.message is None:
                continue
            role = "user" if content.role == self.requester else "assistant"
            text = content.message
            if role == "user":
                # Stored text carries the model's input replacements; show what the user typed.
                text = self.undo_input_replacement(text)
            messages.append({"role": role, "content": text})
        return messages

    def undo_input_replacement(self, text: str) -> str:
        replacements = self.get_replacement_when_input()
        if not replacements:
            return text
        return self.replace_string(text, [(new, old) for old, new in reversed(replacements)])

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "chat_contents": [content.to_dict() for content in self.chat_contents],
            "requester": self.requester,
            "responder": self.responder,
            "chat_mode": self.chat_mode,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbstractChatPrompt:
        prompt = cls()
        prompt.system = data.get("system", "")
        prompt.requester = data.get("requester", prompt.requester)
        prompt.responder = data.get("responder", prompt.responder)
        prompt.chat_mode = data.get("chat_mode", True)
        for item in data.get("chat_contents", []):
            content = ChatContent.from_dict(item)
            prompt.chat_contents.append(content)
            if content.role == prompt.responder:
                prompt.responder_messages.append(content)
            elif content.role == prompt.requester:
                prompt.requester_messages.append(content)
        return prompt

    # --- what each model family defines -------------------------------------------------------
    @abstractmethod
    def get_stop_strs(self) -> list[str] | None:
        """Strings that end the reply (the model started the next speaker's turn)."""

    @abstractmethod
    def create_prompt(self, opts: dict[str, Any] | None = None) -> str:
        """Render the whole conversation as the model's input text."""

    def get_replacement_when_input(self) -> list[tuple[str, str]] | None:
        """Replacement pairs applied to user input (e.g. newline to a model token)."""
        return None

    def get_replacement_when_output(self) -> list[tuple[str, str]] | None:
        """Replacement pairs applied to generated text before it is shown."""
        return None

    def build_initial_prompt(self, chat_prompt: AbstractChatPrompt) -> None:
        """Hook for a common initial instruction; the seed's presets leave it empty."""
