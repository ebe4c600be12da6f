"""The seed's prompt presets, named exactly as the ChatStream documents name them."""

from __future__ import annotations

from typing import Any

from .base import AbstractChatPrompt


class _RoleColonPrompt(AbstractChatPrompt):
    """``role: message<separator>`` lines ending with the responder's open turn."""

    separator = "\n"
    open_turn_suffix = ":"

    def create_prompt(self, opts: dict[str, Any] | None = None) -> str:
        if not self.chat_mode:
            return self.get_requester_last_msg() or ""
        text = self.system
        for content in self.get_contents(opts):
            if not content.role:
                continue
            if content.message:
                text += f"{content.role}: {content.message}{self.separator}"
            else:
                text += content.role + self.open_turn_suffix
        return text


class ChatPromptTogetherRedPajamaINCITEChat(_RoleColonPrompt):
    """togethercomputer/RedPajama-INCITE-Chat-3B-v1: ``<human>: ...\\n<bot>:``."""

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("<human>")
        self.set_responder("<bot>")

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        # "\n<" is the seed's safety valve: the model began writing the human's next line.
        return ["<|endoftext|>", "\n<"]


class ChatPromptRinnaJapaneseGPTNeoxInst(_RoleColonPrompt):
    """rinna/japanese-gpt-neox-3.6b-instruction-sft: ``ユーザー: ...<NL>システム: ``."""

    separator = "<NL>"
    open_turn_suffix = ": "

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("ユーザー")
        self.set_responder("システム")

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        return []

    def get_replacement_when_input(self) -> list[tuple[str, str]] | None:
        return [("\n", "<NL>")]

    def get_replacement_when_output(self) -> list[tuple[str, str]] | None:
        return [("<NL>", "\n")]
