"""The seed's prompt classes render as the ChatStream documents describe."""

from __future__ import annotations

from chatstream import (
    ChatPromptRinnaJapaneseGPTNeoxInst,
    ChatPromptTogetherRedPajamaINCITEChat,
    ChatTemplatePrompt,
)
from chatstream.core.output_filter import OutputFilter
from chatstream.engine.text import find_stop, partial_suffix_len


def test_redpajama_prompt_and_stop_strings():
    prompt = ChatPromptTogetherRedPajamaINCITEChat()
    prompt.add_requester_msg("Who is Alan Turing")
    prompt.add_responder_msg(None)
    assert prompt.create_prompt() == "<human>: Who is Alan Turing\n<bot>:"
    assert prompt.get_stop_strs() == ["<|endoftext|>", "\n<"]


def test_rinna_replaces_newlines_both_ways():
    prompt = ChatPromptRinnaJapaneseGPTNeoxInst()
    prompt.add_requester_msg("こんにちは\n元気？")
    prompt.add_responder_msg(None)
    assert prompt.create_prompt() == "ユーザー: こんにちは<NL>元気？<NL>システム: "
    assert prompt.to_messages() == [{"role": "user", "content": "こんにちは\n元気？"}]


def test_round_trip_through_dict_and_turn_dropping():
    prompt = ChatPromptTogetherRedPajamaINCITEChat()
    for index in range(3):
        prompt.add_requester_msg(f"q{index}")
        prompt.add_responder_msg(f"a{index}" if index < 2 else None)
    copy = ChatPromptTogetherRedPajamaINCITEChat.from_dict(prompt.to_dict())
    assert copy.create_prompt() == prompt.create_prompt()
    assert copy.drop_oldest_turn()
    assert copy.create_prompt() == "<human>: q1\n<bot>: a1\n<human>: q2\n<bot>:"
    assert copy.drop_oldest_turn()
    assert not copy.drop_oldest_turn()  # the current turn always stays
    assert prompt.get_turn() == 3


def test_regenerate_blanks_the_last_reply():
    prompt = ChatPromptTogetherRedPajamaINCITEChat()
    prompt.add_requester_msg("hi")
    prompt.add_responder_msg("hello")
    prompt.remove_last_responder_message()
    assert prompt.create_prompt() == "<human>: hi\n<bot>:"


def test_chat_template_prompt_without_a_template_falls_back_to_a_transcript():
    bound = ChatTemplatePrompt.bind(None)
    prompt = bound()
    prompt.set_system("be brief")
    prompt.add_requester_msg("hi")
    prompt.add_responder_msg(None)
    assert prompt.create_prompt() == "system: be brief\nuser: hi\nassistant:"


def test_partial_suffix_and_stop_search():
    assert partial_suffix_len("hello <", ["<NL>"]) == 1
    assert partial_suffix_len("hello <N", ["<NL>", "\n<"]) == 2
    assert partial_suffix_len("hello", ["<NL>"]) == 0
    assert find_stop("abc\n<human>", ["\n<"]) == 3
    assert find_stop("abc", ["\n<"]) == -1


def test_output_filter_replaces_keys_split_across_tokens():
    out = OutputFilter([("<NL>", "\n")])
    shown = [out.feed(piece) for piece in ["行1", "<", "N", "L>", "行2"]]
    assert "".join(shown) + out.flush() == "行1\n行2"
    assert shown[1] == "" and shown[2] == ""  # held back while "<NL>" was incomplete
