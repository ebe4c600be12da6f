"""The seed's prompt model: a conversation kept as role-tagged contents, rendered per model family.

``AbstractChatPrompt`` keeps the seed's public method names (``add_requester_msg``, ``create_prompt``,
``get_stop_strs``, ...) because user code subclasses it; storage-friendly ``to_dict``/``from_dict`` let
a history store rebuild the same object on any replica. Editing the history (removing, blanking,
finding messages) lives in :class:`HistoryEditing`; what a model family defines is at the bottom.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from .content import ChatContent, PromptTTL, RoleType
from .editing import HistoryEditing

__all__ = ["AbstractChatPrompt", "ChatContent", "PromptTTL", "RoleType"]


class AbstractChatPrompt(HistoryEditing, ABC):
    """A builder of chat prompts following the etiquette of one language model family."""

    def __init__(self) -> None:
        self.system = ""
        self.chat_contents: list[ChatContent] = []
        self.responder_messages: list[ChatContent] = []
        self.requester_messages: list[ChatContent] = []
        self.requester = ""
        self.responder = ""
        self.chat_mode = True
        #: special-token strings of the tokenizer (``set_tokenizer``), left out of the skip length
        self.special_tokens: list[str] | None = None
        self.prefix_as_stop_str_enabled = False
        #: the seed's name for the text that opens the *requester's* turn, used as a stop string
        self.responder_prefix_as_stop_str: str | None = None
        self.prompt_ttl_mode = PromptTTL.MULTI_TURN

    # --- conversation state (the seed's API) ------------------------------------------------
    def get_turn(self) -> int:
        """Exchanges so far, the current one included (one requester message per turn)."""
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

    def set_prompt_ttl(self, prompt_ttl: PromptTTL) -> None:
        """``PromptTTL.SINGLE_TURN`` renders only the newest exchange; ``MULTI_TURN`` (default) all."""
        self.prompt_ttl_mode = prompt_ttl

    def add_requester_msg(
        self, message: str | None, child_message: str | None = None, child_messages: list[str] | None = None
    ) -> None:
        """Add the user's message; ``child_message(s)`` are inputs attached to that instruction."""
        if child_message is not None and child_messages is not None:
            raise ValueError("pass child_message or child_messages, not both")
        if child_messages is not None and (
            not isinstance(child_messages, list)
            or not child_messages
            or not all(isinstance(item, str) for item in child_messages)
        ):
            raise ValueError("child_messages must be a non-empty list of strings")
        children = [child_message] if child_message is not None else child_messages
        self._add_msg(ChatContent(self.requester, message, role_type=RoleType.REQUESTER, child_msgs=children))

    def add_responder_msg(self, message: str | None) -> None:
        self._add_msg(ChatContent(self.responder, message, role_type=RoleType.RESPONDER))

    def get_responder_last_msg(self) -> str | None:
        return self.responder_messages[-1].get_message() if self.responder_messages else None

    def get_requester_last_msg(self) -> str | None:
        return self.requester_messages[-1].get_message() if self.requester_messages else None

    def is_empty(self) -> bool:
        """True while neither side has said anything (the system text does not count)."""
        return not self.requester_messages and not self.responder_messages

    def _add_msg(self, content: ChatContent) -> None:
        self.chat_contents.append(content)
        if content.is_responder():
            self.responder_messages.append(content)
        elif content.is_requester():
            replacements = self.get_replacement_when_input()
            if replacements is not None and content.get_message() is not None:
                content.set_message(self.replace_string(content.get_message(), replacements))
            self.requester_messages.append(content)

    def is_requester_role(self, role: str) -> bool:
        return self.requester == role

    def get_contents(self, opts: dict[str, Any] | None = None) -> list[ChatContent]:
        """The contents to render.

        ``{"omit_last_message": True}`` keeps the newest message's role but not its text, so the
        model is asked to write that message again (its tag is left open); ``{"to_message_id": id}``
        stops after that message. A single-turn prompt keeps only the newest exchange.
        """
        opts = opts or {}
        contents = list(self.chat_contents)
        to_message_id = opts.get("to_message_id")
        if to_message_id is not None:
            ids = [content.get_message_id() for content in contents]
            if to_message_id in ids:
                contents = contents[: ids.index(to_message_id) + 1]
        if opts.get("omit_last_message") and contents:
            contents[-1] = contents[-1].copy_open()
        if self.prompt_ttl_mode is PromptTTL.SINGLE_TURN:
            starts = [i for i, content in enumerate(contents) if content.is_requester()]
            contents = contents[starts[-1] :] if starts else contents[-2:]
        return contents

    # --- stop strings -------------------------------------------------------------------------
    def set_prefix_as_stop_str_enabled(self, enabled: bool) -> None:
        """Also stop where the model starts the user's next turn (its tag, e.g. ``<human>:``).

        For models that do not stop reliably at their end-of-text token. The tag is found by
        rendering an empty conversation with and without an open requester message, so set the role
        names first; the conversation itself is left as it is.
        """
        self.prefix_as_stop_str_enabled = enabled
        self.responder_prefix_as_stop_str = self._requester_prefix() if enabled else None

    def _requester_prefix(self) -> str:
        saved = (self.chat_contents, self.responder_messages, self.requester_messages, self.chat_mode)
        self.chat_contents, self.responder_messages, self.requester_messages = [], [], []
        self.chat_mode = True
        try:
            before = self.create_prompt()
            self.add_requester_msg(None)
            after = self.create_prompt()
        finally:
            self.chat_contents, self.responder_messages, self.requester_messages, self.chat_mode = saved
        prefix = after[len(before) :] if after.startswith(before) else after
        if not prefix:
            raise ValueError(
                "the requester's turn renders as nothing: call set_requester (and set_responder) so that "
                "create_prompt shows whose turn it is before enabling prefix_as_stop_str"
            )
        return prefix

    def get_final_stop_strs(self) -> list[str]:
        """What ends a reply: the requester's tag (when enabled) and :meth:`get_stop_strs`."""
        stops = []
        if self.prefix_as_stop_str_enabled and self.responder_prefix_as_stop_str:
            stops.append(self.responder_prefix_as_stop_str)
        stops.extend(self.get_stop_strs() or [])
        return list(dict.fromkeys(stop for stop in stops if stop))

    def _get_final_stop_strs(self) -> list[str]:
        """The seed's name for :meth:`get_final_stop_strs`."""
        return self.get_final_stop_strs()

    # --- what the seed's echo-skipping code needs -------------------------------------------------
    def set_tokenizer(self, tokenizer: Any) -> None:
        """Remember the tokenizer's special tokens: decoded output skips them, so the skip length must."""
        if tokenizer is None:
            return
        tokens: list[str] = []
        for value in getattr(tokenizer, "special_tokens_map", {}).values():
            values = value if isinstance(value, list | tuple) else [value]
            tokens.extend(v for v in values if isinstance(v, str))
        self.special_tokens = tokens

    def get_skip_len(self, omit_last_message: bool = False) -> int:
        """Characters of the decoded output that echo the prompt (special tokens not counted)."""
        text = self.create_prompt({"omit_last_message": omit_last_message})
        for token in self.special_tokens or []:
            text = text.replace(token, "")
        return self.get_custom_skip_echo_len(len(text))

    def get_custom_skip_echo_len(self, skip_echo_len: int) -> int:
        """Hook for models whose decoded output does not echo the prompt character for character."""
        return skip_echo_len

    # --- text helpers -------------------------------------------------------------------------
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
            if content.is_requester():
                # Stored text carries the model's input replacements; show what the user typed.
                messages.append({"role": "user", "content": self.undo_input_replacement(content.message)})
            else:
                messages.append({"role": "assistant", "content": content.message})
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
            "prompt_ttl": self.prompt_ttl_mode.name,
            "prefix_as_stop_str_enabled": self.prefix_as_stop_str_enabled,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbstractChatPrompt:
        """Rebuild from :meth:`to_dict`, the seed's dicts, or older dicts without role types."""
        prompt = cls()
        prompt.system = data.get("system", "") or ""
        prompt.requester = data.get("requester", prompt.requester)
        prompt.responder = data.get("responder", prompt.responder)
        prompt.chat_mode = data.get("chat_mode", True)
        if data.get("prompt_ttl"):
            prompt.prompt_ttl_mode = PromptTTL[data["prompt_ttl"]]
        if data.get("prefix_as_stop_str_enabled") and not prompt.prefix_as_stop_str_enabled:
            prompt.set_prefix_as_stop_str_enabled(True)
        for item in data.get("chat_contents", []):
            content = ChatContent.from_dict(item)
            if content.role_type is RoleType.UNKNOWN:
                content.role_type = prompt.role_type_of(content.role)
            prompt.chat_contents.append(content)
            if content.is_responder():
                prompt.responder_messages.append(content)
            elif content.is_requester():
                prompt.requester_messages.append(content)
        return prompt

    def role_type_of(self, role: str) -> RoleType:
        """The side a role name stands for; UNKNOWN when both sides share the name."""
        if role == self.requester and role != self.responder:
            return RoleType.REQUESTER
        if role == self.responder and role != self.requester:
            return RoleType.RESPONDER
        return RoleType.UNKNOWN

    # --- what each model family defines -------------------------------------------------------
    def get_stop_strs(self) -> list[str] | None:
        """Strings that end the reply (the model started the next speaker's turn); None: none."""
        return None

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
