"""The seed's AbstractChatPrompt methods behave as ChatStream 0.3.0 documents and implements them."""

from __future__ import annotations

from typing import Any

import pytest

from chatstream.prompts import (
    AbstractChatPrompt,
    ChatContent,
    ChatPromptMetaLlamaLlama2Chat,
    ChatPromptStockmarkGptNeoxJp,
    ChatPromptTogetherRedPajamaINCITEChat,
    ChatTemplatePrompt,
    PromptTTL,
    RoleType,
)


def redpajama(*messages: str | None) -> ChatPromptTogetherRedPajamaINCITEChat:
    """Alternating requester/responder messages, the requester first."""
    prompt = ChatPromptTogetherRedPajamaINCITEChat()
    for index, message in enumerate(messages):
        (prompt.add_requester_msg if index % 2 == 0 else prompt.add_responder_msg)(message)
    return prompt


def test_the_issue_example_keeps_the_bot_tag_open():
    prompt = redpajama("Who is Alan Turing", "He is a nice guy")
    assert prompt.create_prompt({"omit_last_message": True}) == "<human>: Who is Alan Turing\n<bot>:"
    assert prompt.create_prompt() == "<human>: Who is Alan Turing\n<bot>: He is a nice guy\n"
    assert prompt.get_responder_last_msg() == "He is a nice guy"  # rendering changed nothing


def test_is_empty_and_clear_history():
    prompt = redpajama()
    prompt.set_system("sys ")
    assert prompt.is_empty()
    prompt.add_requester_msg("hi")
    assert not prompt.is_empty()
    prompt.add_responder_msg("hello")
    prompt.clear_history()
    assert prompt.is_empty() and prompt.get_turn() == 0
    assert prompt.chat_contents == [] and prompt.system == "sys "
    assert prompt.create_prompt() == "sys "


def test_remove_last_requester_msg():
    prompt = redpajama("q1", "a1", "q2")
    prompt.remove_last_requester_msg()
    assert prompt.get_turn() == 1 and prompt.get_requester_last_msg() == "q1"
    with pytest.raises(ValueError):
        prompt.remove_last_requester_msg()  # the newest message is a reply
    redpajama().remove_last_requester_msg()  # nothing to remove: nothing happens


def test_remove_last_responder_msg():
    prompt = redpajama("q1", "a1")
    prompt.remove_last_responder_msg()
    assert prompt.create_prompt() == "<human>: q1\n"
    assert prompt.responder_messages == []
    with pytest.raises(ValueError):
        prompt.remove_last_responder_msg()
    with pytest.raises(ValueError):
        redpajama().remove_last_responder_msg()


def test_clear_last_responder_message_blanks_only_a_last_reply():
    prompt = redpajama("q1", "a1")
    prompt.clear_last_responder_message()
    assert prompt.get_responder_last_msg() is None
    assert prompt.create_prompt() == "<human>: q1\n<bot>:"
    asked = redpajama("q1", "a1", "q2")
    asked.clear_last_responder_message()  # the last message is the user's: nothing changes
    assert asked.get_responder_last_msg() == "a1"
    legacy = redpajama("q1", "a1")
    legacy.remove_last_responder_message()  # this package's older name, same behaviour
    assert legacy.get_responder_last_msg() is None


def test_message_ids_name_replies():
    prompt = redpajama("q1", None)
    prompt.set_responder_last_msg("a1")
    prompt.set_responder_last_msg_id("m-1")
    prompt.add_requester_msg("q2")
    prompt.add_responder_msg("a2")
    prompt.set_responder_last_msg_id("m-2")
    assert prompt.find_chat_content_by_message_id("m-1").get_message() == "a1"
    assert prompt.find_chat_content_by_message_id("m-2").get_message() == "a2"
    assert prompt.find_chat_content_by_message_id("nope") is None
    assert prompt.create_prompt({"to_message_id": "m-1"}) == "<human>: q1\n<bot>: a1\n"
    copy = type(prompt).from_dict(prompt.to_dict())
    assert copy.find_chat_content_by_message_id("m-2").get_message() == "a2"


def test_single_turn_prompts_render_only_the_newest_exchange():
    prompt = redpajama("q1", "a1", "q2", None)
    prompt.set_prompt_ttl(PromptTTL.SINGLE_TURN)
    assert prompt.create_prompt() == "<human>: q2\n<bot>:"
    assert prompt.get_turn() == 2  # the history is kept, only not rendered
    prompt.set_prompt_ttl(PromptTTL.MULTI_TURN)
    assert prompt.create_prompt().startswith("<human>: q1")
    copy = type(prompt).from_dict({**prompt.to_dict(), "prompt_ttl": "SINGLE_TURN"})
    assert copy.create_prompt() == "<human>: q2\n<bot>:"


class Plain(AbstractChatPrompt):
    """A user's prompt class written for 0.3.0: roles, create_prompt and build_initial_prompt only."""

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("User")
        self.set_responder("Bot")

    def create_prompt(self, opts: dict[str, Any] | None = None) -> str:
        text = self.system
        for content in self.get_contents(opts):
            text += f"{content.role}: {content.message}\n" if content.message else f"{content.role}:"
        return text

    def build_initial_prompt(self, chat_prompt: AbstractChatPrompt) -> None:
        pass


def test_prefix_as_stop_str_uses_the_requesters_tag_and_keeps_the_history():
    prompt = Plain()
    prompt.set_system("Be brief.\n")
    prompt.add_requester_msg("hi")
    assert prompt.get_stop_strs() is None and prompt.get_final_stop_strs() == []
    prompt.set_prefix_as_stop_str_enabled(True)
    assert prompt.get_final_stop_strs() == ["User:"]
    assert prompt._get_final_stop_strs() == ["User:"]  # the seed's name
    assert prompt.get_requester_last_msg() == "hi" and prompt.get_turn() == 1
    prompt.set_prefix_as_stop_str_enabled(False)
    assert prompt.get_final_stop_strs() == []
    assert ChatPromptTogetherRedPajamaINCITEChat().get_final_stop_strs()[0] == "<human>:"


def test_prefix_as_stop_str_needs_a_visible_requester_tag():
    with pytest.raises(ValueError, match="set_requester"):
        ChatPromptStockmarkGptNeoxJp().set_prefix_as_stop_str_enabled(True)


class FakeTokenizer:
    special_tokens_map = {"bos_token": "<s>", "eos_token": "</s>", "additional_special_tokens": ["<x>"]}
    chat_template = None


def test_set_tokenizer_leaves_special_tokens_out_of_the_skip_length():
    prompt = ChatPromptMetaLlamaLlama2Chat()
    prompt.set_system("")
    prompt.add_requester_msg("Hi <x>")
    prompt.add_responder_msg(None)
    text = prompt.create_prompt()
    assert prompt.get_skip_len() == len(text)
    prompt.set_tokenizer(FakeTokenizer())
    assert prompt.special_tokens == ["<s>", "</s>", "<x>"]
    assert prompt.get_skip_len() == len(text.replace("<s>", "").replace("<x>", ""))
    prompt.set_tokenizer(None)  # the seed ignores a missing tokenizer
    assert prompt.special_tokens == ["<s>", "</s>", "<x>"]


def test_chat_template_prompt_renders_with_the_tokenizer_it_is_given():
    class Templated(FakeTokenizer):
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "|".join(m["content"] for m in messages) + ("|>" if add_generation_prompt else "")

    prompt = ChatTemplatePrompt()
    prompt.add_requester_msg("hi")
    prompt.add_responder_msg(None)
    assert prompt.create_prompt() == "user: hi\nassistant:"
    prompt.set_tokenizer(Templated())
    assert prompt.create_prompt() == "hi|>"


def test_custom_skip_echo_len_is_a_hook():
    prompt = redpajama("q1", None)
    assert prompt.get_custom_skip_echo_len(17) == 17
    assert prompt.get_skip_len() == len("<human>: q1\n<bot>:")
    llama = ChatPromptMetaLlamaLlama2Chat()
    for message in ("q1", "a1", "q2", None):
        (llama.add_requester_msg if message in ("q1", "q2") else llama.add_responder_msg)(message)
    assert llama.get_custom_skip_echo_len(100) == 102  # the seed's per-turn correction


def test_role_types_keep_the_sides_apart_when_role_names_are_empty():
    prompt = ChatPromptStockmarkGptNeoxJp()
    prompt.add_requester_msg("q1")
    prompt.add_responder_msg("a1")
    prompt.add_requester_msg("q2")
    prompt.add_responder_msg(None)
    assert prompt.get_turn() == 2 and len(prompt.responder_messages) == 2
    assert [c.get_role_type() for c in prompt.chat_contents] == [RoleType.REQUESTER, RoleType.RESPONDER] * 2
    assert prompt.drop_oldest_turn()
    assert prompt.create_prompt() == "q2"
    assert prompt.to_messages() == [{"role": "user", "content": "q2"}]


def test_child_messages_and_old_dicts():
    prompt = Plain()
    prompt.add_requester_msg("compare", child_messages=["A", "B"])
    assert prompt.chat_contents[0].get_child_messages() == ["A", "B"]
    with pytest.raises(ValueError):
        prompt.add_requester_msg("x", child_message="a", child_messages=["b"])
    with pytest.raises(ValueError):
        prompt.add_requester_msg("x", child_messages=[])
    # a dict stored before messages had role types: the role names tell the sides apart
    contents = [{"role": "User", "message": "q"}, {"role": "Bot", "message": None}]
    old = {"system": "", "chat_contents": contents}
    restored = Plain.from_dict(old)
    assert restored.get_turn() == 1 and restored.get_responder_last_msg() is None
    assert ChatContent.from_dict(restored.chat_contents[0].to_dict()).is_requester()
