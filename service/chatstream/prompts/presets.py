"""The seed's prompt presets for English models, each in the format its model card documents.

Stop strings are what the model writes when it starts the next speaker's turn (or its end marker
as text); the end-of-text token itself stops generation in the engine. The Japanese presets are in
:mod:`.presets_ja` and re-exported here, where the seed's first two presets always lived.
"""

from __future__ import annotations

from .content import ChatContent
from .formatted import RoleColonPrompt, SectionPrompt
from .presets_ja import ChatPromptRinnaJapaneseGPTNeoxInst, ChatPromptRinnaJpGptNeoxInstSft

__all__ = [
    "ChatPromptDatabricksDolly",
    "ChatPromptMetaLlamaLlama2Chat",
    "ChatPromptMosaicmlMptChat",
    "ChatPromptOpenlmrOpenLlama",
    "ChatPromptRinnaJapaneseGPTNeoxInst",
    "ChatPromptRinnaJpGptNeoxInstSft",
    "ChatPromptTogetherRedPajamaINCITEChat",
]

LLAMA2_DEFAULT_SYSTEM = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while "
    "being safe. Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, "
    "or illegal content. Please ensure that your responses are socially unbiased and positive in nature.\n"
    "If a question does not make any sense, or is not factually coherent, explain why instead of answering "
    "something not correct. If you don't know the answer to a question, please don't share false "
    "information."
)
DOLLY_INTRO = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
MPT_DEFAULT_SYSTEM = (
    "A conversation between a user and an LLM-based AI assistant. "
    "The assistant gives helpful and honest answers."
)


class ChatPromptTogetherRedPajamaINCITEChat(RoleColonPrompt):
    """togethercomputer/RedPajama-INCITE-Chat-3B-v1 / 7B-Chat: ``<human>: ...\\n<bot>:``."""

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("<human>")
        self.set_responder("<bot>")
        self.set_prefix_as_stop_str_enabled(True)

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        # "\n<" is the seed's safety valve: the model began writing the human's next line.
        return ["<|endoftext|>", "\n<"]


class ChatPromptOpenlmrOpenLlama(RoleColonPrompt):
    """openlm-research/open_llama_3b_v2 (a base model): the card's ``Q: ...\\nA:`` question answering."""

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("Q")
        self.set_responder("A")

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        # The seed's list: the model goes on with the next question or invents answer options B:, C:.
        return ["\nQ:", "\nB:", "\nC:"]


class ChatPromptMosaicmlMptChat(SectionPrompt):
    """mosaicml/mpt-7b-chat and mpt-30b-chat: ChatML, with the chat template's default system text."""

    def __init__(self) -> None:
        super().__init__()
        self.set_system(MPT_DEFAULT_SYSTEM)
        self.set_requester("user")
        self.set_responder("assistant")
        self.set_prefix_as_stop_str_enabled(True)

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        return ["<|im_end|>", "<|im_start|>", "<|endoftext|>"]

    def render_head(self) -> str:
        return f"<|im_start|>system\n{self.system}<|im_end|>\n" if self.system else ""

    def render_content(self, content: ChatContent) -> str:
        if content.message:
            return f"<|im_start|>{content.role}\n{content.message}<|im_end|>\n"
        return f"<|im_start|>{content.role}\n"


class ChatPromptDatabricksDolly(SectionPrompt):
    """databricks/dolly-v2-3b/7b/12b: the instruction pipeline's intro, Instruction/Response/End keys.

    Each finished exchange is a whole training record (the reply followed by ``### End``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_system(DOLLY_INTRO)
        self.set_requester("Instruction")
        self.set_responder("Response")
        self.set_prefix_as_stop_str_enabled(True)

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        return ["### End", "### Instruction:"]

    def render_head(self) -> str:
        return f"{self.system}\n\n" if self.system else ""

    def render_content(self, content: ChatContent) -> str:
        tag = f"### {content.role}:\n"
        if not content.message:
            return tag
        if content.is_responder():
            return f"{tag}{content.message}\n\n### End\n\n"
        return f"{tag}{content.message}\n\n"


class ChatPromptMetaLlamaLlama2Chat(SectionPrompt):
    """meta-llama/Llama-2-*-chat: ``<s>[INST] <<SYS>>...<</SYS>>\\n\\nq [/INST] a </s><s>[INST] ...``.

    Messages are stripped, as Meta's reference code does; with no system text the ``<<SYS>>`` block
    is left out. The text starts with the BOS token, so encode it without adding another.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_system(LLAMA2_DEFAULT_SYSTEM)
        self.set_requester("")
        self.set_responder("")

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        return ["</s>", "[INST]"]

    def render_head(self) -> str:
        system = f"<<SYS>>\n{self.system}\n<</SYS>>\n\n" if self.system else ""
        return f"<s>[INST] {system}"

    def render_content(self, content: ChatContent) -> str:
        if not content.message:
            return ""
        if content.is_requester():
            return f"{content.message.strip()} [/INST]"
        return f" {content.message.strip()} </s><s>[INST] "

    def get_custom_skip_echo_len(self, skip_echo_len: int) -> int:
        # The seed's correction: from the second turn on, the decoded output runs one character
        # longer per turn than the prompt text (the Llama tokenizer's spaces at </s><s> boundaries).
        turn = self.get_turn()
        return skip_echo_len + turn if turn >= 2 else skip_echo_len
